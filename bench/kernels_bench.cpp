// Matmul micro-benchmarks at TinyLlama shapes for every weight type, ISA and
// thread count. Counters: bytes/s = weight bytes streamed per second, FLOP/s
// = 2·rows·cols·n per second.
//
// "dram" runs cycle through enough copies of the matrix (>= 1 GiB in all) to
// defeat the last-level cache (300 MB on the development machine), as decode
// over all layers does; "cache" runs reuse one copy.
//
// Run e.g.: ./build/kernels_bench --benchmark_filter='n=1/' --benchmark_min_time=0.3s
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/matmul.h"
#include "kernels/matmul_bf16dot.h"
#include "kernels/quant_pack.h"
#include "util/thread_pool.h"

namespace nucleus::kernels {
namespace {

constexpr size_t kDramBytes = size_t{1} << 30;

struct Shape {
  int64_t rows, cols;
};

std::vector<uint8_t> make_weights(DType t, int64_t rows, int64_t cols, size_t copies) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  const size_t rb = row_bytes(t, cols);
  const size_t one = rb * static_cast<size_t>(rows);
  std::vector<uint8_t> bytes(one * copies);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = dist(rng);
    quantize_row(t, row.data(), bytes.data() + r * rb, cols);
  }
  for (size_t c = 1; c < copies; ++c) std::memcpy(bytes.data() + c * one, bytes.data(), one);
  return bytes;
}

// isa < 0: the scalar reference (single-threaded).
void run(benchmark::State& state, DType t, Shape s, int64_t n, int threads, int isa, bool dram) {
  const size_t one = row_bytes(t, s.cols) * static_cast<size_t>(s.rows);
  const size_t copies = dram ? (kDramBytes + one - 1) / one : 1;
  const std::vector<uint8_t> w = make_weights(t, s.rows, s.cols, copies);
  std::vector<float> x(static_cast<size_t>(n * s.cols));
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  std::vector<float> y(static_cast<size_t>(n * s.rows));
  ThreadPool pool(threads);
  MatmulWorkspace ws;
  // Quantized weights run repacked, as a loaded model holds them.
  std::vector<Matrix> mats;
  std::vector<AlignedBytes> storage(copies);
  for (size_t c = 0; c < copies; ++c)
    mats.push_back(pack_matrix(Matrix{t, s.rows, s.cols, w.data() + one * c}, storage[c]));
  size_t k = 0;
  for (auto _ : state) {
    const Matrix& m = mats[k];
    if (isa < 0) {
      matmul_reference(m, x.data(), n, y.data());
    } else {
      matmul(static_cast<MatmulIsa>(isa), m, x.data(), n, y.data(), pool, ws);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++k == copies) k = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * one));
  state.counters["FLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(s.rows * s.cols * n) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// The BF16-dot definition (matmul_bf16dot.h) on the same BF16 matrices, for
// A/B against matmul/<isa>/bf16 and prefill/<isa>/bf16.
void run_bf16dot(benchmark::State& state, Shape s, int64_t n, int threads, Bf16DotIsa isa,
                 bool dram) {
  const size_t one = row_bytes(DType::BF16, s.cols) * static_cast<size_t>(s.rows);
  const size_t copies = dram ? (kDramBytes + one - 1) / one : 1;
  const std::vector<uint8_t> w = make_weights(DType::BF16, s.rows, s.cols, copies);
  std::vector<float> x(static_cast<size_t>(n * s.cols));
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  std::vector<float> y(static_cast<size_t>(n * s.rows));
  ThreadPool pool(threads);
  MatmulWorkspace ws;
  size_t k = 0;
  for (auto _ : state) {
    const Matrix m{DType::BF16, s.rows, s.cols, w.data() + one * k};
    matmul_bf16dot(isa, m, x.data(), n, y.data(), pool, ws);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++k == copies) k = 0;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * one));
  state.counters["FLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(s.rows * s.cols * n) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// Calibration: the FP32 FMA rate one thread gets right now with 256-bit FMAs
// in 10 independent register chains (no memory traffic). On a shared machine
// this shows how much of a core the benchmarks actually get.
void BM_peak_fma256(benchmark::State& state) {
  __m256 a[10];
  for (int k = 0; k < 10; ++k) a[k] = _mm256_set1_ps(static_cast<float>(k));
  const __m256 m = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
  constexpr int64_t kIters = 1 << 16;
  for (auto _ : state) {
    for (int64_t i = 0; i < kIters; ++i) {
      for (int k = 0; k < 10; ++k) a[k] = _mm256_fmadd_ps(a[k], m, b);
    }
    for (int k = 0; k < 10; ++k) benchmark::DoNotOptimize(a[k]);
  }
  state.counters["FLOP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kIters * 10 * 16, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_peak_fma256)->UseRealTime();

// The fixed cost of one parallel_for (barrier + wake-up), which decode pays
// for every matrix of every layer.
void BM_parallel_for_overhead(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::atomic<int64_t> sink{0};
  const std::function<void(int64_t)> fn = [&](int64_t t) {
    sink.fetch_add(t, std::memory_order_relaxed);
  };
  for (auto _ : state) pool.parallel_for(16, fn);
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_parallel_for_overhead)->Arg(2)->UseRealTime();

// Two tasks of ~10 µs of arithmetic each: with a worker that is awake at once
// this takes ~10 µs, with one that must be woken from sleep it takes longer.
void BM_parallel_for_two_10us_tasks(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::atomic<int64_t> sink{0};
  const std::function<void(int64_t)> fn = [&](int64_t t) {
    float v = static_cast<float>(t);
    for (int i = 0; i < 20000; ++i) v = v * 0.999f + 1.0f;  // latency-bound: ~4 cycles each
    sink.fetch_add(static_cast<int64_t>(v), std::memory_order_relaxed);
  };
  for (auto _ : state) pool.parallel_for(2, fn);
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_parallel_for_two_10us_tasks)->Arg(1)->Arg(2)->UseRealTime();

const bool kRegistered = [] {
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                         DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q5_0, DType::Q4_1};
  const Shape shapes[] = {{2048, 2048}, {5632, 2048}, {2048, 5632}};
  for (DType t : types) {
    for (Shape s : shapes) {
      for (int64_t n : {int64_t{1}, int64_t{64}}) {
        for (int isa = -1; isa <= 1; ++isa) {
          if (isa >= 0 && !matmul_isa_supported(static_cast<MatmulIsa>(isa))) continue;
          for (int threads : {1, 2}) {
            if (isa < 0 && threads > 1) continue;
            for (bool dram : {true, false}) {
              if (n > 1 && dram) continue;  // prefill is compute bound; one copy suffices
              std::string name = "matmul/";
              name += isa < 0 ? "reference" : matmul_isa_name(static_cast<MatmulIsa>(isa));
              name += "/";
              name += dtype_name(t);
              name += "/";
              name += std::to_string(s.rows) + "x" + std::to_string(s.cols);
              name += "/n=" + std::to_string(n);
              name += "/t=" + std::to_string(threads);
              name += dram ? "/dram" : "/cache";
              benchmark::RegisterBenchmark(
                  name.c_str(), [=](benchmark::State& st) { run(st, t, s, n, threads, isa, dram); })
                  ->UseRealTime()
                  ->Unit(benchmark::kMicrosecond);
            }
          }
        }
      }
    }
  }
  // Float-weight prefill at every TinyLlama matrix shape (attention q/o,
  // k/v, MLP gate/up, MLP down, output), short batches and typical prompt
  // lengths.
  const DType float_types[] = {DType::F16, DType::BF16, DType::F32};
  const Shape all_shapes[] = {{2048, 2048}, {256, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
  for (DType t : float_types) {
    for (Shape s : all_shapes) {
      for (int64_t n : {int64_t{4}, int64_t{16}, int64_t{128}, int64_t{512}}) {
        for (int isa = 0; isa <= 1; ++isa) {
          if (!matmul_isa_supported(static_cast<MatmulIsa>(isa))) continue;
          for (int threads : {1, 2}) {
            std::string name = "prefill/";
            name += matmul_isa_name(static_cast<MatmulIsa>(isa));
            name += "/";
            name += dtype_name(t);
            name += "/";
            name += std::to_string(s.rows) + "x" + std::to_string(s.cols);
            name += "/n=" + std::to_string(n);
            name += "/t=" + std::to_string(threads);
            benchmark::RegisterBenchmark(
                name.c_str(), [=](benchmark::State& st) { run(st, t, s, n, threads, isa, false); })
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
          }
        }
      }
    }
  }
  for (Bf16DotIsa isa : {Bf16DotIsa::kAvx2, Bf16DotIsa::kAvx512}) {
    if (!bf16dot_isa_supported(isa)) continue;
    for (Shape s : {Shape{2048, 2048}, Shape{5632, 2048}, Shape{2048, 5632}}) {
      for (int64_t n : {int64_t{1}, int64_t{64}, int64_t{512}}) {
        for (int threads : {1, 2}) {
          const bool dram = n == 1;
          std::string name = "bf16dot/";
          name += isa == Bf16DotIsa::kAvx512 ? "avx512" : "avx2";
          name += "/";
          name += std::to_string(s.rows) + "x" + std::to_string(s.cols);
          name += "/n=" + std::to_string(n);
          name += "/t=" + std::to_string(threads);
          name += dram ? "/dram" : "/cache";
          benchmark::RegisterBenchmark(
              name.c_str(),
              [=](benchmark::State& st) { run_bf16dot(st, s, n, threads, isa, dram); })
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace nucleus::kernels
