#pragma once
// Measured performance of one phase of a run (prefill, decode, a bench
// repetition) beside the machine's peaks: tok/s, achieved FLOP/s and bytes/s
// from the engine's OpCounters, MFU and MBU. Shared by `generate` and `bench`
// so both print the same line.
//
// FLOPs are the engine's counted matmul + attention FLOPs (the analytic
// model's "remainder" — norms, RoPE, softmax, SwiGLU — is not counted), bytes
// are weights + KV read + KV written (activation traffic is not counted).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cost/probe.h"
#include "formats/tensor.h"
#include "runtime/engine.h"

namespace nucleus::cli {

struct PhasePerf {
  int64_t tokens = 0;
  double seconds = 0;
  double flops = 0;                                           // counters.total_flops()
  double bytes = 0;                                           // weight + KV read + KV write bytes
  double tokens_per_s = 0, flops_per_s = 0, bytes_per_s = 0;  // 0 when seconds is 0
  double mfu = 0, mbu = 0;  // fractions of the peaks (0 when a peak is unknown)
};

// weight_dtype picks the FLOP peak (Model::weight_type()); threads picks the
// one-thread or all-thread peaks, as cost::mfu/mbu do.
PhasePerf phase_perf(int64_t tokens, double seconds, const OpCounters& counters,
                     const cost::MachinePeaks& peaks, DType weight_dtype, int threads);

// One line, no newline, columns aligned across calls, e.g. (one line)
// "decode       15 new tok         3.77 ms     3976.0 tok/s      0.0080 GFLOP
//      2.128 GFLOP/s     4.208 GB/s  MFU   5.32%  MBU  52.60%"
std::string phase_line(std::string_view name, std::string_view unit, const PhasePerf& p);

// Where the peaks came from and their values for this dtype and thread count,
// e.g. "peaks for MFU/MBU: 40.0 GFLOP/s (f32 weights), 8.0 GB/s, 1 thread; source: default ...".
std::string peaks_line(const cost::MachinePeaks& peaks, DType weight_dtype, int threads);

// {"tokens", "seconds", "tokens_per_second", "flops", "bytes", "flops_per_second",
//  "bytes_per_second", "mfu", "mbu"}
nlohmann::json phase_perf_json(const PhasePerf& p);

}  // namespace nucleus::cli
