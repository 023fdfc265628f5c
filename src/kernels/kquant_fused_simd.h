#pragma once
// Internal to the K-quant kernels: the exact integer sums of one Q4_K, Q5_K
// or Q6_K super-block against C activation rows (matmul_kquant.h), with the
// weights unpacked in registers and never stored: one 32-byte unpack feeds
// all C rows. `Madd` is the ISA's "acc += pairs(p)·s" on 16-bit lanes
// (vpmaddwd + vpaddd on AVX2, vpdpwssd on AVX-512 VNNI). Internal linkage:
// each including file keeps its own copy (an inline function shared by files
// built with different flags could resolve to the AVX-512 copy).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/matmul_kquant.h"

namespace nucleus::kernels::detail {
namespace {

inline int32_t fused_hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline __m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The eight 6-bit scales (or mins) of a Q4_K/Q5_K super-block as bytes:
// low word for sub-blocks 0–3, high word for 4–7.
inline uint64_t k4_bytes(const uint8_t* s, bool mins) {
  uint32_t a, b, c;
  std::memcpy(&a, s, 4);
  std::memcpy(&b, s + 4, 4);
  std::memcpy(&c, s + 8, 4);
  const uint32_t first = mins ? b : a;
  const uint32_t lo = first & 0x3f3f3f3fu;
  const uint32_t hi = ((mins ? c >> 4 : c) & 0x0f0f0f0fu) | ((first >> 2) & 0x30303030u);
  return lo | static_cast<uint64_t>(hi) << 32;
}

// Q4_K (HasHigh = false) and Q5_K (true): isum[c] = Σ_k sc_k·Σ u·q and
// msum[c] = Σ_k mn_k·bs_k for the super-block at b.
template <class Madd, bool HasHigh, int C>
inline void fused_q45k(const uint8_t* b, const int8_t* const* xq, const int16_t* const* bs,
                       int32_t* isum, int32_t* msum) {
  const __m256i sc8 = _mm256_set1_epi64x(static_cast<int64_t>(k4_bytes(b + 4, false)));
  const __m256i mn8 = _mm256_set1_epi64x(static_cast<int64_t>(k4_bytes(b + 4, true)));
  // Lane k of 16 int16 gets min k/2 (both 128-bit halves hold the 8 bytes).
  const __m256i mn_idx =
      _mm256_setr_epi8(0, -128, 0, -128, 1, -128, 1, -128, 2, -128, 2, -128, 3, -128, 3, -128, 4,
                       -128, 4, -128, 5, -128, 5, -128, 6, -128, 6, -128, 7, -128, 7, -128);
  const __m256i mn16 = _mm256_shuffle_epi8(mn8, mn_idx);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const uint8_t* qs = b + (HasHigh ? 48 : 16);
  __m256i qh = HasHigh ? load32(b + 16) : _mm256_setzero_si256();
  const __m256i one = _mm256_set1_epi8(1);
  __m256i acc[C];
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int ch = 0; ch < 4; ++ch) {
    const __m256i v = load32(qs + 32 * ch);
    __m256i lo = _mm256_and_si256(v, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    if constexpr (HasHigh) {
      // Bit 2ch of qh[j] tops element 64ch + j, bit 2ch+1 element 64ch+32+j;
      // shifting 16-bit lanes right brings each byte's next bit to bit 0.
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
      qh = _mm256_srli_epi16(qh, 1);
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
      qh = _mm256_srli_epi16(qh, 1);
    }
    const __m256i s_lo =
        _mm256_shuffle_epi8(sc8, _mm256_set1_epi16(static_cast<int16_t>(0x8000 | (2 * ch))));
    const __m256i s_hi =
        _mm256_shuffle_epi8(sc8, _mm256_set1_epi16(static_cast<int16_t>(0x8000 | (2 * ch + 1))));
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      acc[c] = Madd::f(acc[c], _mm256_maddubs_epi16(lo, load32(xq[c] + 64 * ch)), s_lo);
      acc[c] = Madd::f(acc[c], _mm256_maddubs_epi16(hi, load32(xq[c] + 64 * ch + 32)), s_hi);
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) {
    isum[c] = fused_hsum(acc[c]);
    msum[c] = fused_hsum(_mm256_madd_epi16(load32(bs[c]), mn16));
  }
}

// Q6_K: isum[c] = Σ_k sc_k·(Σ u·q − 32·bs_k).
template <class Madd, int C>
inline void fused_q6k(const uint8_t* b, const int8_t* const* xq, const int16_t* const* bs,
                      int32_t* isum) {
  const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192));
  const __m256i sc16 = _mm256_cvtepi8_epi16(sc);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i three = _mm256_set1_epi8(3);
  __m256i acc[C];
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c)
    acc[c] = _mm256_madd_epi16(load32(bs[c]), _mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32)));
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m256i l0 = load32(b + 64 * h);
    const __m256i l1 = load32(b + 64 * h + 32);
    __m256i qh = load32(b + 128 + 32 * h);
#pragma GCC unroll 4
    for (int s = 0; s < 4; ++s) {
      const __m256i l = s % 2 == 0 ? l0 : l1;
      const __m256i lo =
          s < 2 ? _mm256_and_si256(l, low) : _mm256_and_si256(_mm256_srli_epi16(l, 4), low);
      const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, three), 4));
      qh = _mm256_srli_epi16(qh, 2);
      // Sub-blocks k = 8h + 2s (lanes 0–7) and k + 1 (lanes 8–15).
      const int k = 8 * h + 2 * s;
      const __m128i idx = _mm_setr_epi8(k, k, k, k, k, k, k, k, k + 1, k + 1, k + 1, k + 1, k + 1,
                                        k + 1, k + 1, k + 1);
      const __m256i scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, idx));
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c)
        acc[c] = Madd::f(acc[c], _mm256_maddubs_epi16(q, load32(xq[c] + 128 * h + 32 * s)), scv);
    }
  }
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) isum[c] = fused_hsum(acc[c]);
}

inline float fused_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Weight rows [o0, o1) × activation rows [c0, c0 + C): the float chain of
// matmul_kquant.h per output element, fed by the fused integer sums.
template <class Madd, DType T, int C>
void fused_tile(const KqArgs& a, int64_t c0, int64_t o0, int64_t o1) {
  const int64_t cols = a.w->cols;
  const int64_t ns = cols / 256;
  const int64_t rows = a.w->rows;
  const size_t bb = T == DType::Q6_K ? 210 : T == DType::Q5_K ? 176 : 144;
  KqActView x[C];
  for (int c = 0; c < C; ++c) x[c] = kq_act_view(a.act + (c0 + c) * a.act_stride, cols, 256);
  for (int64_t o = o0; o < o1; ++o) {
    const uint8_t* row = a.w->data + static_cast<size_t>(o) * a.w_stride;
    float acc[C] = {};
    for (int64_t s = 0; s < ns; ++s) {
      const uint8_t* b = row + static_cast<size_t>(s) * bb;
      const int8_t* xq[C];
      const int16_t* bs[C];
      for (int c = 0; c < C; ++c) {
        xq[c] = x[c].q + s * 256;
        bs[c] = x[c].bs + s * 16;
      }
      int32_t isum[C], msum[C];
      if constexpr (T == DType::Q6_K) {
        fused_q6k<Madd, C>(b, xq, bs, isum);
        const float d = fused_f16(b + 208);
        for (int c = 0; c < C; ++c)
          acc[c] = std::fma(static_cast<float>(isum[c]), d * x[c].dx[s], acc[c]);
      } else {
        fused_q45k<Madd, T == DType::Q5_K, C>(b, xq, bs, isum, msum);
        const float d = fused_f16(b), dmin = fused_f16(b + 2);
        for (int c = 0; c < C; ++c) {
          const float dx = x[c].dx[s];
          acc[c] = std::fma(static_cast<float>(isum[c]), d * dx, acc[c]);
          acc[c] = std::fma(static_cast<float>(-msum[c]), dmin * dx, acc[c]);
        }
      }
    }
    for (int c = 0; c < C; ++c) a.y[(c0 + c) * rows + o] = acc[c];
  }
}

template <class Madd, DType T>
void fused_rows_t(const KqArgs& a, int64_t o0, int64_t o1) {
  // Tiles of 4 activation rows share each unpacked 32 bytes of weights; the
  // rows of a task stay in cache while the tiles pass over them.
  constexpr int kTile = 4;
  int64_t c0 = 0;
  for (; c0 + kTile <= a.n; c0 += kTile) fused_tile<Madd, T, kTile>(a, c0, o0, o1);
  switch (a.n - c0) {
    case 3:
      return fused_tile<Madd, T, 3>(a, c0, o0, o1);
    case 2:
      return fused_tile<Madd, T, 2>(a, c0, o0, o1);
    case 1:
      return fused_tile<Madd, T, 1>(a, c0, o0, o1);
    default:
      return;
  }
}

// True when the type has a fused kernel (and it ran).
template <class Madd>
bool fused_rows(const KqArgs& a, int64_t o0, int64_t o1) {
  switch (a.w->type) {
    case DType::Q4_K:
      fused_rows_t<Madd, DType::Q4_K>(a, o0, o1);
      return true;
    case DType::Q5_K:
      fused_rows_t<Madd, DType::Q5_K>(a, o0, o1);
      return true;
    case DType::Q6_K:
      fused_rows_t<Madd, DType::Q6_K>(a, o0, o1);
      return true;
    default:
      return false;
  }
}

}  // namespace
}  // namespace nucleus::kernels::detail
