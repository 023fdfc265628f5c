#include "cli/perf_report.h"

#include <cstdio>

namespace nucleus::cli {

PhasePerf phase_perf(int64_t tokens, double seconds, const OpCounters& counters,
                     const cost::MachinePeaks& peaks, DType weight_dtype, int threads) {
  PhasePerf p;
  p.tokens = tokens;
  p.seconds = seconds;
  p.flops = static_cast<double>(counters.total_flops());
  p.bytes =
      static_cast<double>(counters.weight_bytes + counters.kv_read_bytes + counters.kv_write_bytes);
  if (seconds > 0) {
    p.tokens_per_s = static_cast<double>(tokens) / seconds;
    p.flops_per_s = p.flops / seconds;
    p.bytes_per_s = p.bytes / seconds;
  }
  p.mfu = cost::mfu(p.flops_per_s, peaks, weight_dtype, threads);
  p.mbu = cost::mbu(p.bytes_per_s, peaks, threads);
  return p;
}

std::string phase_line(std::string_view name, std::string_view unit, const PhasePerf& p) {
  const std::string n(name), u(unit);
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%-8s %6lld %-10s %9.2f ms %10.1f tok/s  %10.4f GFLOP %9.3f GFLOP/s %9.3f GB/s"
                "  MFU %6.2f%%  MBU %6.2f%%",
                n.c_str(), static_cast<long long>(p.tokens), u.c_str(), p.seconds * 1e3,
                p.tokens_per_s, p.flops / 1e9, p.flops_per_s / 1e9, p.bytes_per_s / 1e9,
                p.mfu * 100, p.mbu * 100);
  return buf;
}

std::string peaks_line(const cost::MachinePeaks& peaks, DType weight_dtype, int threads) {
  char buf[320];
  std::snprintf(buf, sizeof buf, "peaks for MFU/MBU: %.1f GFLOP/s (%s weights), %.1f GB/s, %d %s",
                cost::peak_flops(peaks, weight_dtype, threads) / 1e9, dtype_info(weight_dtype).name,
                cost::peak_bandwidth(peaks, threads) / 1e9, threads,
                threads == 1 ? "thread" : "threads");
  std::string s = buf;
  s += "; source: ";
  s += peaks.source;
  return s;
}

nlohmann::json phase_perf_json(const PhasePerf& p) {
  return {{"tokens", p.tokens},
          {"seconds", p.seconds},
          {"tokens_per_second", p.tokens_per_s},
          {"flops", p.flops},
          {"bytes", p.bytes},
          {"flops_per_second", p.flops_per_s},
          {"bytes_per_second", p.bytes_per_s},
          {"mfu", p.mfu},
          {"mbu", p.mbu}};
}

}  // namespace nucleus::cli
