#pragma once
// Internal to the K-quant kernels: AVX2 unpacking of Q4_K / Q5_K / Q6_K
// super-blocks into IntBlock (kquant.h), the same integers as unpack_super.
// Included by matmul_kquant_avx2.cpp and matmul_kquant_avx512.cpp; the
// functions have internal linkage so each file keeps its own compiled copy
// (an inline function shared across files built with different flags could
// be resolved to the AVX-512 copy).
#include <immintrin.h>

#include <cstring>

#include "kernels/dtype.h"
#include "kernels/kquant.h"

namespace nucleus::kernels::detail {
namespace {

inline float kq_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline void kq_store(uint8_t* dst, __m256i v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(dst), v);
}

// Q4_K: qs[32c + j] holds elements 64c + j (low nibble) and 64c + 32 + j.
inline void unpack_q4k_simd(const uint8_t* b, IntBlock& out) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  for (int c = 0; c < 4; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16 + 32 * c));
    kq_store(out.u + 64 * c, _mm256_and_si256(v, low));
    kq_store(out.u + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  }
}

// Q5_K: as Q4_K, plus bit g of qh[j] is the fifth bit of element 32g + j.
inline void unpack_q5k_simd(const uint8_t* b, IntBlock& out) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
  for (int c = 0; c < 4; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 48 + 32 * c));
    // Shifting 16-bit lanes right by g moves bit g of each byte to its bit 0.
    const __m256i h0 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), one);
    const __m256i h1 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c + 1)), one);
    kq_store(out.u + 64 * c, _mm256_or_si256(_mm256_and_si256(v, low), _mm256_slli_epi16(h0, 4)));
    kq_store(out.u + 64 * c + 32, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low),
                                                  _mm256_slli_epi16(h1, 4)));
  }
}

// Q6_K: element 128h + 32s + j (s = 2n + jc) takes nibble n of
// ql[64h + 32jc + j] and bits 2s, 2s+1 of qh[32h + j] as its top two bits.
inline void unpack_q6k_simd(const uint8_t* b, IntBlock& out) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i three = _mm256_set1_epi8(3);
  for (int h = 0; h < 2; ++h) {
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
    for (int jc = 0; jc < 2; ++jc) {
      const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32 * jc));
      for (int n = 0; n < 2; ++n) {
        const int s = 2 * n + jc;
        const __m256i lo =
            n == 0 ? _mm256_and_si256(l, low) : _mm256_and_si256(_mm256_srli_epi16(l, 4), low);
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * s)), three);
        kq_store(out.u + 128 * h + 32 * s, _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
      }
    }
  }
}

inline void unpack_scales_k4(const uint8_t* s, IntBlock& out) {
  for (int k = 0; k < 8; ++k) {
    int sc, mn;
    if (k < 4) {
      sc = s[k] & 63;
      mn = s[k + 4] & 63;
    } else {
      sc = (s[k + 4] & 0x0f) | ((s[k - 4] >> 6) << 4);
      mn = (s[k + 4] >> 4) | ((s[k] >> 6) << 4);
    }
    out.sc[2 * k] = out.sc[2 * k + 1] = static_cast<int16_t>(sc);
    out.mn[2 * k] = out.mn[2 * k + 1] = static_cast<int16_t>(mn);
  }
}

// The integer form of super-block s of a row: vectorised for the common
// types, the scalar unpack_super otherwise (same integers either way).
inline void unpack_super_fast(DType t, const uint8_t* row, size_t block_bytes, int64_t s,
                              IntBlock& out) {
  const uint8_t* b = row + static_cast<size_t>(s) * block_bytes;
  switch (t) {
    case DType::Q4_K:
      unpack_q4k_simd(b, out);
      unpack_scales_k4(b + 4, out);
      out.d[0] = kq_f16(b);
      out.m[0] = kq_f16(b + 2);
      return;
    case DType::Q5_K:
      unpack_q5k_simd(b, out);
      unpack_scales_k4(b + 4, out);
      out.d[0] = kq_f16(b);
      out.m[0] = kq_f16(b + 2);
      return;
    case DType::Q6_K:
      unpack_q6k_simd(b, out);
      for (int k = 0; k < 16; ++k) {
        out.sc[k] = static_cast<int8_t>(b[192 + k]);
        out.mn[k] = 0;
      }
      out.d[0] = kq_f16(b + 208);
      out.m[0] = 0.0f;
      return;
    default:
      unpack_super(t, row, s, out);
  }
}

}  // namespace
}  // namespace nucleus::kernels::detail
