// AVX-512 half of decode/prefill attention: the value accumulation, with
// exactly the per-lane arithmetic of accumulate_values() in attention.cpp
// (out·correction, then one fma per position into the even or odd chain by
// position, then even + odd), 16 lanes wide instead of 8. Lanes are output
// dimensions, so the width changes no value: both ISAs give the same bits.
#include <immintrin.h>

#include "kernels/attention_isa.h"

namespace nucleus::kernels::detail {
namespace {

template <int W>
inline void accumulate(float* out, const float* probs, const float* const* v, int64_t d0,
                       int64_t n, float correction) {
  __m512 even[W], odd[W];
  const __m512 cv = _mm512_set1_ps(correction);
#pragma GCC unroll 8
  for (int t = 0; t < W; ++t) {
    even[t] = _mm512_mul_ps(_mm512_loadu_ps(out + 16 * t), cv);
    odd[t] = _mm512_setzero_ps();
  }
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const __m512 p0 = _mm512_set1_ps(probs[j]);
    const __m512 p1 = _mm512_set1_ps(probs[j + 1]);
    const float* v0 = v[j] + d0;
    const float* v1 = v[j + 1] + d0;
#pragma GCC unroll 8
    for (int t = 0; t < W; ++t) {
      even[t] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * t), even[t]);
      odd[t] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1 + 16 * t), odd[t]);
    }
  }
  if (j < n) {
    const __m512 p0 = _mm512_set1_ps(probs[j]);
    const float* v0 = v[j] + d0;
#pragma GCC unroll 8
    for (int t = 0; t < W; ++t) even[t] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * t), even[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < W; ++t) _mm512_storeu_ps(out + 16 * t, _mm512_add_ps(even[t], odd[t]));
}

}  // namespace

void accumulate_values_avx512(float* out, const float* probs, const float* const* v, int64_t hd,
                              int64_t n, float correction) {
  int64_t d0 = 0;
  // 64 dimensions (8 chains of fmas) per pass keep both FMA ports busy.
  for (; d0 + 64 <= hd; d0 += 64) accumulate<4>(out + d0, probs, v, d0, n, correction);
  for (; d0 < hd; d0 += 16) accumulate<1>(out + d0, probs, v, d0, n, correction);
}

}  // namespace nucleus::kernels::detail
