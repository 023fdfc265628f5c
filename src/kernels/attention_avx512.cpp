// AVX-512 half of decode/prefill attention, 16 lanes wide where attention.cpp
// is 8, with exactly its per-lane arithmetic, so both ISAs give the same bits:
//   the scores (lanes = positions): s = q[0]·k[0], then s = fma(q[d], k[d], s)
//     for d = 1 .. D-1, over keys stored transposed (kernels/kv_layout.h);
//   the value accumulation (lanes = output dimensions): out·correction, then
//     one fma per position into the even or odd chain by position, then
//     even + odd.
#include <immintrin.h>

#include "kernels/attention_isa.h"
#include "kernels/dtype.h"

// GCC 12's AVX-512 intrinsic headers start some results from
// _mm512_undefined_*(), which trips -Wuninitialized after inlining.
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace nucleus::kernels::detail {
namespace {

template <int W>
inline void accumulate(float* out, const float* probs, const float* const* v, int64_t d0, int64_t n,
                       float correction) {
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
    for (int t = 0; t < W; ++t)
      even[t] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * t), even[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < W; ++t) _mm512_storeu_ps(out + 16 * t, _mm512_add_ps(even[t], odd[t]));
}

// G heads × S segments of 16 positions: G·S accumulators in registers (16
// at G = 8, S = 2), each key vector loaded once for the G heads, the query
// element broadcast from memory into the fma.
template <int G, int S>
inline void scores_tile(const float* q, int64_t hd, const KeySegment* seg, float* out,
                        int64_t ldo) {
  __m512 acc[G][S];
#pragma GCC unroll 2
  for (int s = 0; s < S; ++s) {
    const __m512 k = _mm512_loadu_ps(seg[s].k);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[g][s] = _mm512_mul_ps(_mm512_set1_ps(q[g * hd]), k);
  }
  for (int64_t d = 1; d < hd; ++d) {
    __m512 k[S];
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) k[s] = _mm512_loadu_ps(seg[s].k + d * seg[s].stride);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m512 qb = _mm512_set1_ps(q[g * hd + d]);
#pragma GCC unroll 2
      for (int s = 0; s < S; ++s) acc[g][s] = _mm512_fmadd_ps(qb, k[s], acc[g][s]);
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 2
    for (int s = 0; s < S; ++s) _mm512_store_ps(out + g * ldo + 16 * s, acc[g][s]);
}

template <int S>
void scores_heads(const float* q, int64_t count, int64_t hd, const KeySegment* seg, float* out,
                  int64_t ldo) {
  int64_t g = 0;
  for (; g + 8 <= count; g += 8) scores_tile<8, S>(q + g * hd, hd, seg, out + g * ldo, ldo);
  const float* qg = q + g * hd;
  float* og = out + g * ldo;
  switch (count - g) {
    case 7:
      return scores_tile<7, S>(qg, hd, seg, og, ldo);
    case 6:
      return scores_tile<6, S>(qg, hd, seg, og, ldo);
    case 5:
      return scores_tile<5, S>(qg, hd, seg, og, ldo);
    case 4:
      return scores_tile<4, S>(qg, hd, seg, og, ldo);
    case 3:
      return scores_tile<3, S>(qg, hd, seg, og, ldo);
    case 2:
      return scores_tile<2, S>(qg, hd, seg, og, ldo);
    case 1:
      return scores_tile<1, S>(qg, hd, seg, og, ldo);
    default:
      return;
  }
}

}  // namespace

void key_scores_avx512(const float* q, int64_t count, int64_t hd, const KeySegment* seg,
                       int64_t n_seg, float* out, int64_t ldo) {
  int64_t s = 0;
  for (; s + 2 <= n_seg; s += 2) scores_heads<2>(q, count, hd, seg + s, out + 16 * s, ldo);
  if (s < n_seg) scores_heads<1>(q, count, hd, seg + s, out + 16 * s, ldo);
}

void convert_keys16_avx512(const KvLayout& l, const char* block, int64_t off, int64_t h,
                           float* dst) {
  const int64_t hd = l.head_dim, bs = l.block_size, first = h * hd;
  if (l.type == DType::F16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(block) + first * bs + off;
    for (int64_t d = 0; d < hd; ++d)
      _mm512_storeu_ps(
          dst + d * 16,
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + d * bs))));
    return;
  }
  const int8_t* q = reinterpret_cast<const int8_t*>(block);
  const uint16_t* scales = reinterpret_cast<const uint16_t*>(q + l.kv_dim() * bs);
  __m512 sc = _mm512_setzero_ps();
  int64_t scale_row = -1;
  for (int64_t d = 0; d < hd; ++d) {
    const int64_t e = first + d;
    if (e / kQBlock != scale_row) {
      scale_row = e / kQBlock;
      sc = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + scale_row * bs + off)));
    }
    const __m512i v =
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + e * bs + off)));
    _mm512_storeu_ps(dst + d * 16, _mm512_mul_ps(_mm512_cvtepi32_ps(v), sc));
  }
}

void convert_values_avx512(const KvLayout& l, const char* block, int64_t off, int64_t n, int64_t h,
                           float* dst) {
  const int64_t hd = l.head_dim, bs = l.block_size;
  const int64_t base = (h * bs + off) * hd;
  if (l.type == DType::F16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(block) + base;
    int64_t i = 0;
    for (; i + 16 <= n * hd; i += 16)
      _mm512_storeu_ps(
          dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
    for (; i < n * hd; ++i) dst[i] = fp16_to_fp32(src[i]);
    return;
  }
  const int8_t* q = reinterpret_cast<const int8_t*>(block);
  const uint16_t* scales = reinterpret_cast<const uint16_t*>(q + l.kv_dim() * bs);
  const int64_t per_row = l.kv_dim() / kQBlock, first = h * hd;
  for (int64_t j = 0; j < n; ++j) {
    const int8_t* r = q + base + j * hd;
    const uint16_t* s = scales + (off + j) * per_row;
    float* o = dst + j * hd;
    int64_t d = 0;
    if (first % 16 == 0) {
      // 16 elements starting at a multiple of 16 stay in one block of 32.
      for (; d + 16 <= hd; d += 16) {
        const __m512 scale = _mm512_set1_ps(_cvtsh_ss(s[(first + d) / kQBlock]));
        const __m512i v =
            _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + d)));
        _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale));
      }
    }
    for (; d < hd; ++d) o[d] = static_cast<float>(r[d]) * fp16_to_fp32(s[(first + d) / kQBlock]);
  }
}

void accumulate_values_avx512(float* out, const float* probs, const float* const* v, int64_t hd,
                              int64_t n, float correction) {
  int64_t d0 = 0;
  // 64 dimensions (8 chains of fmas) per pass keep both FMA ports busy.
  for (; d0 + 64 <= hd; d0 += 64) accumulate<4>(out + d0, probs, v, d0, n, correction);
  for (; d0 < hd; d0 += 16) accumulate<1>(out + d0, probs, v, d0, n, correction);
}

}  // namespace nucleus::kernels::detail
