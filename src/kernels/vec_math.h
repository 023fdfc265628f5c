#pragma once
// Vectorised exp for the softmax and SiLU, AVX2+FMA (the baseline ISA, so it
// gives the same bits on every supported CPU, in prefill and decode alike).
//
// exp(x) = 2^n · e^r with n = round(x / ln 2) and r = x - n·ln 2 (ln 2 split
// in a high part exact in 16 bits and a low correction, so n·ln2_hi is exact
// for |n| ≤ 128), |r| ≤ ln2/2. e^r is its Taylor polynomial to degree 7: the
// truncation error r^8/8! < 6e-9 relative is far below half an ulp (6e-8),
// so the result is within ~1 ulp of the true value (tests/kernels_attention_test
// measures it against std::exp). x is clamped to [-87.3, 88.7]: below, the
// result is the smallest normal-range value ~1e-38 (treated as 0 by every
// caller's sums), above it overflows to +inf as exp does.
#include <immintrin.h>

namespace nucleus::kernels {

inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 hi = _mm256_set1_ps(88.7f);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 = 0.693145751953125 (16 significant bits) + 1.42860682030941723e-6.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723e-6f), r);
  // Horner: 1 + r(1 + r(1/2 + r(1/6 + r(1/24 + r(1/120 + r(1/720 + r/5040)))))).
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // 2^n in two steps (n up to 128 does not fit one float exponent).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(ni, 1);
  const __m256 s1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

}  // namespace nucleus::kernels
