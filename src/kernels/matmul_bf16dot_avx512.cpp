// AVX-512 BF16 kernel of the BF16-dot definition (matmul_bf16dot.h), entered
// only after bf16dot_isa_supported(kAvx512). One zmm holds an output's 16
// lane sums; one vdpbf16ps per 32-column chunk performs both of a lane's
// steps in the definition's order (the instruction's own semantics). Tiles of
// up to 4 weight rows × 4 activation rows share loads; the tile shape never
// changes a lane's sequence of steps, so results do not depend on n or on
// the task split. Prefill (n >= 16) runs 6×4 tiles over 256 KiB blocks of
// activation rows; decode one weight row at a time.
//
// Measured on AMD Zen 5 (2 threads, TinyLlama BF16 pp512): 232 tok/s, 460
// GFLOP/s (4×4 tiles whose accumulators the compiler kept in memory: 117;
// the F32-widening kernels: 135; llama.cpp: 199).
//
// Measured on the development Xeon (kernels_bench, 2048×2048, 1 thread):
// prefill n=512 60 ms vs 35 ms for the F32-widening kernel (vdpbf16ps's
// throughput is the limit there: a 6×4 tile measured the same), decode n=1
// from DRAM about equal (bandwidth bound) — hence auto = off on that CPU.
//
// GCC 12's AVX-512 intrinsic headers start some results from
// _mm512_undefined_*(), which trips -Wuninitialized after inlining.
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <chrono>

#include "kernels/matmul_bf16dot.h"

namespace nucleus::kernels::detail {
namespace {

// The fixed tree of matmul_isa.h.
inline float hsum16(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <int RW, int RX>
void tile(const Bf16DotArgs& a, int64_t o, int64_t r) {
  __m512 acc[RW][RX];
#pragma GCC unroll 8
  for (int i = 0; i < RW; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < RX; ++k) acc[i][k] = _mm512_setzero_ps();
  const uint16_t* wr[RW];
#pragma GCC unroll 8
  for (int i = 0; i < RW; ++i) wr[i] = a.w + (o + i) * a.cols;
  const uint16_t* xr[RX];
#pragma GCC unroll 8
  for (int k = 0; k < RX; ++k) xr[k] = a.x + (r + k) * a.xstride;
  const int64_t full = a.cols / 32 * 32;
  // RX activation vectors, then one weight vector at a time: RW·RX + RX + 1
  // registers, so a 6×4 tile runs without spilling an accumulator.
  const auto step = [&](int64_t c, __mmask32 m) __attribute__((always_inline)) {
    __m512bh xv[RX];
#pragma GCC unroll 8
    for (int k = 0; k < RX; ++k)  // rows are zero-padded to xstride: a full load is safe
      xv[k] = (__m512bh)_mm512_loadu_si512(xr[k] + c);
#pragma GCC unroll 8
    for (int i = 0; i < RW; ++i) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, wr[i] + c);
#pragma GCC unroll 8
      for (int k = 0; k < RX; ++k) acc[i][k] = _mm512_dpbf16_ps(acc[i][k], wv, xv[k]);
    }
  };
  for (int64_t c = 0; c < full; c += 32) step(c, ~__mmask32{0});
  if (full < a.cols) step(full, (__mmask32{1} << (a.cols - full)) - 1);
  // Constant indices only (a variable one keeps acc in memory).
#pragma GCC unroll 8
  for (int i = 0; i < RW; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < RX; ++k) a.y[(r + k) * a.rows + o + i] = hsum16(acc[i][k]);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Prefill: kPW weight rows × kPX activation rows per register tile (24
// accumulators + 6 weights + 1 activation of the 32 zmm), over blocks of
// activation rows small enough to stay in L2 while every weight row of the
// task passes them.
constexpr int kPW = 6;
constexpr int kPX = 4;
constexpr int64_t kXBlockBytes = 256 << 10;

// Weight rows [o, o + RW) against activation rows [r0, r1).
template <int RW>
void rows_block(const Bf16DotArgs& a, int64_t o, int64_t r0, int64_t r1) {
  int64_t r = r0;
  for (; r + kPX <= r1; r += kPX) tile<RW, kPX>(a, o, r);
  switch (r1 - r) {
    case 3:
      tile<RW, 3>(a, o, r);
      break;
    case 2:
      tile<RW, 2>(a, o, r);
      break;
    case 1:
      tile<RW, 1>(a, o, r);
      break;
    default:
      break;
  }
}

void prefill(const Bf16DotArgs& a, int64_t o0, int64_t o1) {
  const int64_t row_bytes = a.xstride * static_cast<int64_t>(sizeof(uint16_t));
  const int64_t xb = std::max<int64_t>(kPX, kXBlockBytes / row_bytes / kPX * kPX);
  for (int64_t r0 = 0; r0 < a.n; r0 += xb) {
    const int64_t r1 = std::min(a.n, r0 + xb);
    int64_t o = o0;
    for (; o + kPW <= o1; o += kPW) rows_block<kPW>(a, o, r0, r1);
    for (; o + 2 <= o1; o += 2) rows_block<2>(a, o, r0, r1);
    for (; o < o1; ++o) rows_block<1>(a, o, r0, r1);
  }
}

}  // namespace

void bf16dot_rows_avx512(const Bf16DotArgs& a, int64_t o0, int64_t o1) {
  if (a.n >= 16) return prefill(a, o0, o1);
  // Decode and short batches: one weight row at a time, a single sequential
  // weight stream (matmul_avx512.cpp measures why).
  for (int64_t o = o0; o < o1; ++o) rows_block<1>(a, o, 0, a.n);
}

void bf16dot_round_row_avx512(const float* x, int64_t cols, uint16_t* out) {
  int64_t i = 0;
  for (; i + 32 <= cols; i += 32) {
    // vcvtne2ps2bf16 puts its second source in the low half.
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, (__m512i)v);
  }
  if (i < cols) {
    const int64_t left = cols - i;
    const __mmask16 m0 = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    const __mmask16 m1 = left > 16 ? __mmask16((1u << (left - 16)) - 1) : __mmask16(0);
    const __m512 lo = _mm512_maskz_loadu_ps(m0, x + i);
    const __m512 hi = _mm512_maskz_loadu_ps(m1, x + i + 16);
    const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    _mm512_mask_storeu_epi16(out + i, (__mmask32(1) << left) - 1, v);
  }
}

// One core's rate of independent vdpbf16ps chains vs independent FMA chains
// (12 each, as cost/probe_avx512.cpp: enough to cover the latency on current cores), best of 3
// rounds of ~0.3 ms. vdpbf16ps does 64 FLOPs per instruction, vfmadd231ps 32.
double bf16dot_probe_ratio_avx512() {
  constexpr int kIters = 20000;
  constexpr int kChains = 12;
  double best_dot = 1e30, best_fma = 1e30;
  float sink = 0.0f;
  for (int round = 0; round < 3; ++round) {
    {
      __m512 acc[kChains];
      for (auto& v : acc) v = _mm512_setzero_ps();
      const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0
      const auto t0 = std::chrono::steady_clock::now();
      for (int it = 0; it < kIters; ++it) {
        for (auto& v : acc) v = _mm512_dpbf16_ps(v, b, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
      }
      best_dot = std::min(best_dot, seconds_since(t0));
      for (auto& v : acc) sink += _mm512_reduce_add_ps(v);
    }
    {
      __m512 acc[kChains];
      for (auto& v : acc) v = _mm512_setzero_ps();
      const __m512 b = _mm512_set1_ps(1.0f);
      const auto t0 = std::chrono::steady_clock::now();
      for (int it = 0; it < kIters; ++it) {
        for (auto& v : acc) v = _mm512_fmadd_ps(v, b, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
      }
      best_fma = std::min(best_fma, seconds_since(t0));
      for (auto& v : acc) sink += _mm512_reduce_add_ps(v);
    }
  }
  __asm__ volatile("" : : "x"(sink));
  if (best_dot <= 0.0 || best_fma <= 0.0) return 0.0;
  return (64.0 / best_dot) / (32.0 / best_fma);
}

}  // namespace nucleus::kernels::detail
