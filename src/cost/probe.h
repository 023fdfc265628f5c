#pragma once
// What this machine can do at best: memory read bandwidth and the peak rate of
// the dot-product instructions our kernels use, for 1 thread and for all of
// them. MFU and MBU divide what a run achieved by these peaks.
//
// Measuring takes a few seconds, so results are cached as JSON in
// $XDG_CACHE_HOME/nucleus/peaks.json (or ~/.cache/nucleus/peaks.json); without
// a cache a conservative built-in default is used. `source` says which.
#include <cstdint>
#include <string>

#include "formats/tensor.h"

namespace nucleus::cost {

struct RatePair {
  double one = 0;  // one thread
  double all = 0;  // `threads` threads
};

struct MachinePeaks {
  RatePair read_bw;   // bytes/s streamed from a buffer far larger than the caches
  RatePair fma_f32;   // FLOP/s of f32 FMA (2 per lane per instruction)
  RatePair dot_bf16;  // FLOP/s of bf16 pair dot products (vdpbf16ps), else = fma_f32
  RatePair dot_int8;  // OP/s of u8·s8 dot products (vpdpbusd, else AVX2 maddubs+madd)
  int threads = 1;
  std::string isa;          // "avx512" or "avx2": the widest path measured
  std::string source;       // "measured <UTC date>", "cached (measured <date>)", "default ..."
  std::string measured_at;  // UTC ISO date of the measurement; empty for the default
};

struct ProbeOptions {
  int threads = 0;                      // 0 = std::thread::hardware_concurrency()
  int64_t bandwidth_bytes = 512 << 20;  // buffer streamed for the bandwidth test
  double seconds_per_test = 0.2;        // rough time per compute test and thread count
};

// Runs the micro-benchmarks now (a few seconds).
MachinePeaks measure_peaks(const ProbeOptions& options = {});

// A deliberately low estimate for a 2020s x86 core with AVX2, for when nothing
// was measured.
MachinePeaks default_peaks(int threads = 0);

// $XDG_CACHE_HOME/nucleus/peaks.json, else $HOME/.cache/nucleus/peaks.json.
std::string peaks_cache_path();

// Writes peaks as JSON (creating the directory). Throws Error on I/O failure.
void save_peaks(const MachinePeaks& peaks, const std::string& path);
// Reads a file written by save_peaks; throws Error naming the file and field.
MachinePeaks load_peaks(const std::string& path);
// The cached peaks when the cache file exists and reads cleanly, else the
// default with `source` saying why (an unreadable cache is named, not fatal).
MachinePeaks cached_or_default_peaks(const std::string& path = peaks_cache_path());

// The peak that bounds a matmul with weights of this dtype as our kernels run
// it: f32/f16/bf16 -> FMA (bf16 is widened to f32), q8_0/q4_0 -> int8 dot. `threads` > 1 picks the all-thread rate.
double peak_flops(const MachinePeaks& peaks, DType weight_dtype, int threads);
// The peaks MFU is judged against when BF16 weights run through the BF16 dot
// product (kernels/matmul_bf16dot.h): the same, with the BF16-dot FLOP/s as
// the BF16 weights' peak (noted in source).
MachinePeaks with_bf16_dot_peak(MachinePeaks peaks);
double peak_bandwidth(const MachinePeaks& peaks, int threads);
// Model FLOPs utilisation and memory bandwidth utilisation, in [0, 1] when the
// peaks hold (0 when a peak is unknown).
double mfu(double achieved_flops_per_s, const MachinePeaks& peaks, DType weight_dtype, int threads);
double mbu(double achieved_bytes_per_s, const MachinePeaks& peaks, int threads);

// Kernels used by measure_peaks, exposed for the AVX-512 translation unit.
namespace probe_detail {
// Each returns the FLOPs (or OPs) it performed; work ~ `iterations`.
double fma_f32_avx2(int64_t iterations);
double dot_int8_avx2(int64_t iterations);
double fma_f32_avx512(int64_t iterations);
double dot_bf16_avx512(int64_t iterations);
double dot_int8_avx512(int64_t iterations);
}  // namespace probe_detail

}  // namespace nucleus::cost
