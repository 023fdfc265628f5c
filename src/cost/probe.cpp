#include "cost/probe.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "util/cpu_features.h"
#include "util/error.h"

namespace nucleus::cost {

namespace probe_detail {
namespace {
constexpr int kChains = 12;
}  // namespace

double fma_f32_avx2(int64_t iterations) {
  const __m256 a = _mm256_set1_ps(0.999999f);
  const __m256 b = _mm256_set1_ps(1e-7f);
  __m256 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(0.01f * static_cast<float>(j));
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  }
  __m256 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm256_add_ps(s, acc[j]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  volatile float sink = lanes[0] + lanes[7];
  (void)sink;
  return static_cast<double>(iterations) * kChains * 8 * 2;
}

double dot_int8_avx2(int64_t iterations) {
  // AVX2 has no 8-bit dot instruction: u8·s8 pairs -> i16 (maddubs), then pairs
  // of i16 -> i32 (madd with ones), then accumulate: 32 multiply-adds per step.
  const __m256i a = _mm256_set1_epi8(1);
  const __m256i b = _mm256_set1_epi8(-1);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_epi32(j);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) {
      // Vary one operand with the accumulator so the products are not hoisted.
      const __m256i x = _mm256_xor_si256(a, acc[j]);
      acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b), ones));
    }
  }
  __m256i s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm256_add_epi32(s, acc[j]);
  alignas(32) int lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  volatile int sink = lanes[0] + lanes[7];
  (void)sink;
  return static_cast<double>(iterations) * kChains * 32 * 2;
}

}  // namespace probe_detail

namespace {

using Clock = std::chrono::steady_clock;

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

// Runs fn(thread_index) on n threads at once (the caller is thread 0) and
// returns the wall time in seconds.
double timed_parallel(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> workers;
  const auto t0 = Clock::now();
  for (int t = 1; t < n; ++t) workers.emplace_back(fn, t);
  fn(0);
  for (auto& w : workers) w.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Peak rate of a compute kernel: calibrate the iteration count on one thread to
// about `seconds`, then take the best of a few runs for 1 and n threads.
RatePair compute_rate(const std::function<double(int64_t)>& kernel, int n, double seconds) {
  int64_t iters = 1 << 12;
  for (;;) {
    const auto t0 = Clock::now();
    kernel(iters);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dt > seconds / 8 || iters > (int64_t{1} << 34)) {
      iters = std::max<int64_t>(
          1, static_cast<int64_t>(static_cast<double>(iters) * seconds / std::max(dt, 1e-9)));
      break;
    }
    iters *= 4;
  }
  RatePair r;
  for (int rep = 0; rep < 3; ++rep) {
    double ops = 0;
    const double dt1 = timed_parallel(1, [&](int) { ops = kernel(iters); });
    r.one = std::max(r.one, ops / dt1);
    if (n > 1) {
      std::vector<double> per(n, 0);
      const double dtn = timed_parallel(n, [&](int t) { per[t] = kernel(iters); });
      double total = 0;
      for (double p : per) total += p;
      r.all = std::max(r.all, total / dtn);
    }
  }
  if (n == 1) r.all = r.one;
  return r;
}

float sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0;
  for (float v : lanes) s += v;
  for (; i < n; ++i) s += p[i];
  return s;
}

RatePair read_bandwidth(int n, int64_t bytes) {
  const int64_t elems = std::max<int64_t>(bytes / 4 / 256 * 256, 256);
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> buf(
      static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(elems) * 4)));
  check(buf != nullptr,
        "probe: cannot allocate " + std::to_string(elems * 4) + " bytes for the bandwidth test");
  float* p = buf.get();
  // Every thread touches the slice it will read, so pages are resident (and, on
  // NUMA machines, local) before timing.
  auto slice = [&](int t, int parts) {
    const int64_t per = elems / parts / 32 * 32;
    const int64_t begin = per * t;
    const int64_t end = t == parts - 1 ? elems : begin + per;
    return std::pair<int64_t, int64_t>(begin, end);
  };
  timed_parallel(n, [&](int t) {
    auto [b, e] = slice(t, n);
    std::fill(p + b, p + e, 1.0f);
  });
  RatePair r;
  std::vector<float> sums(n, 0);
  for (int rep = 0; rep < 3; ++rep) {
    const double dt1 = timed_parallel(1, [&](int) { sums[0] += sum_avx2(p, elems); });
    r.one = std::max(r.one, static_cast<double>(elems) * 4 / dt1);
    if (n > 1) {
      const double dtn = timed_parallel(n, [&](int t) {
        auto [b, e] = slice(t, n);
        sums[t] += sum_avx2(p + b, e - b);
      });
      r.all = std::max(r.all, static_cast<double>(elems) * 4 / dtn);
    }
  }
  volatile float sink = sums[0];
  (void)sink;
  if (n == 1) r.all = r.one;
  return r;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

MachinePeaks measure_peaks(const ProbeOptions& options) {
  check(options.bandwidth_bytes >= (1 << 20), "probe: bandwidth buffer must be at least 1 MiB");
  const int n = resolve_threads(options.threads);
  const CpuFeatures& cpu = cpu_features();
  MachinePeaks p;
  p.threads = n;
  p.read_bw = read_bandwidth(n, options.bandwidth_bytes);
  const double sec = options.seconds_per_test;
  const bool avx512 = cpu.has_avx512_core();
  p.isa = avx512 ? "avx512" : "avx2";
  p.fma_f32 =
      compute_rate(avx512 ? probe_detail::fma_f32_avx512 : probe_detail::fma_f32_avx2, n, sec);
  // Without vdpbf16ps a bf16 matmul widens to f32 and runs on FMA.
  p.dot_bf16 =
      avx512 && cpu.avx512bf16 ? compute_rate(probe_detail::dot_bf16_avx512, n, sec) : p.fma_f32;
  p.dot_int8 = avx512 && cpu.avx512vnni ? compute_rate(probe_detail::dot_int8_avx512, n, sec)
                                        : compute_rate(probe_detail::dot_int8_avx2, n, sec);
  p.measured_at = utc_now();
  p.source = "measured " + p.measured_at;
  return p;
}

MachinePeaks default_peaks(int threads) {
  // Low on purpose: one ~2.5 GHz AVX2 core with one FMA port, 8 GB/s per core
  // and 16 GB/s shared. A utilisation above 1 against these means "measure".
  const int n = resolve_threads(threads);
  const double dn = static_cast<double>(n);
  MachinePeaks p;
  p.threads = n;
  p.isa = "avx2";
  p.read_bw = {8e9, std::max(8e9, std::min(16e9, 8e9 * dn))};
  p.fma_f32 = {40e9, 40e9 * dn};
  p.dot_bf16 = p.fma_f32;
  p.dot_int8 = {80e9, 80e9 * dn};
  p.source = "default (conservative built-in; run `nucleus cost --probe` to measure)";
  return p;
}

std::string peaks_cache_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] != '\0') return std::string(xdg) + "/nucleus/peaks.json";
  const char* home = std::getenv("HOME");
  check(home != nullptr && home[0] != '\0', "probe: neither XDG_CACHE_HOME nor HOME is set");
  return std::string(home) + "/.cache/nucleus/peaks.json";
}

void save_peaks(const MachinePeaks& peaks, const std::string& path) {
  auto pair = [](const RatePair& r) {
    return nlohmann::json{{"one_thread", r.one}, {"all_threads", r.all}};
  };
  nlohmann::json j = {
      {"version", 1},
      {"measured_at", peaks.measured_at},
      {"threads", peaks.threads},
      {"isa", peaks.isa},
      {"read_bytes_per_s", pair(peaks.read_bw)},
      {"fma_f32_flops", pair(peaks.fma_f32)},
      {"dot_bf16_flops", pair(peaks.dot_bf16)},
      {"dot_int8_ops", pair(peaks.dot_int8)},
  };
  std::error_code ec;
  const std::filesystem::path file(path);
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  check(!ec, "probe: cannot create " + file.parent_path().string() + ": " + ec.message());
  std::ofstream out(path, std::ios::trunc);
  check(out.good(), "probe: cannot write " + path);
  out << j.dump(2) << "\n";
  check(out.good(), "probe: failed writing " + path);
}

MachinePeaks load_peaks(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "probe: cannot open " + path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && j.is_object(), path + ": not a JSON object");
  auto number = [&](const nlohmann::json& obj, const std::string& key, const std::string& where) {
    check(obj.is_object() && obj.contains(key) && obj[key].is_number(),
          path + ": field '" + where + key + "' missing or not a number");
    const double v = obj[key].get<double>();
    check(v > 0 && v < 1e18,
          path + ": field '" + where + key + "' out of range: " + std::to_string(v));
    return v;
  };
  auto pair = [&](const std::string& key) {
    check(j.contains(key), path + ": field '" + key + "' missing");
    const std::string where = key + ".";
    return RatePair{number(j[key], "one_thread", where), number(j[key], "all_threads", where)};
  };
  check(j.contains("version") && j["version"] == 1, path + ": field 'version' missing or not 1");
  MachinePeaks p;
  p.threads = static_cast<int>(number(j, "threads", ""));
  p.read_bw = pair("read_bytes_per_s");
  p.fma_f32 = pair("fma_f32_flops");
  p.dot_bf16 = pair("dot_bf16_flops");
  p.dot_int8 = pair("dot_int8_ops");
  if (j.contains("isa") && j["isa"].is_string()) p.isa = j["isa"].get<std::string>();
  if (j.contains("measured_at") && j["measured_at"].is_string())
    p.measured_at = j["measured_at"].get<std::string>();
  p.source = "cached (measured " + p.measured_at + ", " + path + ")";
  return p;
}

MachinePeaks cached_or_default_peaks(const std::string& path) {
  if (!std::filesystem::exists(path)) return default_peaks();
  try {
    return load_peaks(path);
  } catch (const Error& e) {
    MachinePeaks p = default_peaks();
    p.source = "default (ignored unreadable cache: " + std::string(e.what()) + ")";
    return p;
  }
}

double peak_flops(const MachinePeaks& peaks, DType weight_dtype, int threads) {
  const bool all = threads > 1;
  switch (weight_dtype) {
    // By default the matmul kernels widen BF16 weights to F32 and use FMAs,
    // so FMA bounds BF16 too; with the BF16 dot product on, callers pass
    // with_bf16_dot_peak(peaks).
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return all ? peaks.fma_f32.all : peaks.fma_f32.one;
    default:  // every block-quantized type runs int8 dot products
      return all ? peaks.dot_int8.all : peaks.dot_int8.one;
  }
  return 0;
}

MachinePeaks with_bf16_dot_peak(MachinePeaks peaks) {
  // Only BF16 weights read the FMA figure once their matmuls run vdpbf16ps.
  peaks.fma_f32 = peaks.dot_bf16;
  peaks.source += "; BF16 weights through the BF16 dot product: its peak";
  return peaks;
}

double peak_bandwidth(const MachinePeaks& peaks, int threads) {
  return threads > 1 ? peaks.read_bw.all : peaks.read_bw.one;
}

double mfu(double achieved_flops_per_s, const MachinePeaks& peaks, DType weight_dtype,
           int threads) {
  const double peak = peak_flops(peaks, weight_dtype, threads);
  return peak > 0 ? achieved_flops_per_s / peak : 0;
}

double mbu(double achieved_bytes_per_s, const MachinePeaks& peaks, int threads) {
  const double peak = peak_bandwidth(peaks, threads);
  return peak > 0 ? achieved_bytes_per_s / peak : 0;
}

}  // namespace nucleus::cost
