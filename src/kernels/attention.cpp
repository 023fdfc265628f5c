#include "kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/attention_isa.h"
#include "kernels/dtype.h"
#include "kernels/kv_layout.h"
#include "kernels/vec_math.h"
#include "util/cpu_features.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

// A fixed tree over 8 lanes (i + (i+4), then pairs, then the last two), for
// the softmax's sums. AVX2 is the project's baseline ISA.
inline float hsum8(__m256 acc) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// The scores of G query heads against one segment of 16 positions (two
// 8-lane halves), keys stored transposed: lanes are positions, and each
// lane computes s = q[0]·k[0], then s = fma(q[d], k[d], s) for d = 1 ..
// hd-1 — a fixed order that no vector width changes, so the AVX-512 tile
// (attention_avx512.cpp) and this one give the same bits, and no
// horizontal sums are needed. 2G accumulators (8 at G = 4) hide the fma
// latency.
template <int G>
inline void scores_tile(const float* q, int64_t hd, const detail::KeySegment& seg, float* out,
                        int64_t ldo) {
  __m256 lo[G], hi[G];
  {
    const __m256 k0 = _mm256_loadu_ps(seg.k), k1 = _mm256_loadu_ps(seg.k + 8);
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      const __m256 qb = _mm256_broadcast_ss(q + g * hd);
      lo[g] = _mm256_mul_ps(qb, k0);
      hi[g] = _mm256_mul_ps(qb, k1);
    }
  }
  for (int64_t d = 1; d < hd; ++d) {
    const float* k = seg.k + d * seg.stride;
    const __m256 k0 = _mm256_loadu_ps(k), k1 = _mm256_loadu_ps(k + 8);
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      const __m256 qb = _mm256_broadcast_ss(q + g * hd + d);
      lo[g] = _mm256_fmadd_ps(qb, k0, lo[g]);
      hi[g] = _mm256_fmadd_ps(qb, k1, hi[g]);
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) {
    _mm256_store_ps(out + g * ldo, lo[g]);
    _mm256_store_ps(out + g * ldo + 8, hi[g]);
  }
}

void key_scores_avx2(const float* q, int64_t count, int64_t hd, const detail::KeySegment* seg,
                     int64_t n_seg, float* out, int64_t ldo) {
  for (int64_t s = 0; s < n_seg; ++s) {
    int64_t g = 0;
    for (; g + 4 <= count; g += 4)
      scores_tile<4>(q + g * hd, hd, seg[s], out + g * ldo + 16 * s, ldo);
    const float* qg = q + g * hd;
    float* og = out + g * ldo + 16 * s;
    switch (count - g) {
      case 3:
        scores_tile<3>(qg, hd, seg[s], og, ldo);
        break;
      case 2:
        scores_tile<2>(qg, hd, seg[s], og, ldo);
        break;
      case 1:
        scores_tile<1>(qg, hd, seg[s], og, ldo);
        break;
      default:
        break;
    }
  }
}

// out[d0 .. d0+8W) = out·correction + Σ_j p_j·v_j, one fma per term, the
// even-numbered positions of the block into one sum and the odd-numbered into
// a second, added at the end: two chains halve the FMA latency each block
// waits on. The split depends only on the position, so a row gets the same
// bits in prefill and decode.
template <int W>
inline void accumulate_values(float* out, const float* probs, const float* const* v, int64_t d0,
                              int64_t n, float correction) {
  __m256 even[W], odd[W];
  const __m256 cv = _mm256_set1_ps(correction);
#pragma GCC unroll 8
  for (int t = 0; t < W; ++t) {
    even[t] = _mm256_mul_ps(_mm256_loadu_ps(out + 8 * t), cv);
    odd[t] = _mm256_setzero_ps();
  }
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const __m256 p0 = _mm256_set1_ps(probs[j]);
    const __m256 p1 = _mm256_set1_ps(probs[j + 1]);
    const float* v0 = v[j] + d0;
    const float* v1 = v[j + 1] + d0;
#pragma GCC unroll 8
    for (int t = 0; t < W; ++t) {
      even[t] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * t), even[t]);
      odd[t] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(v1 + 8 * t), odd[t]);
    }
  }
  if (j < n) {
    const __m256 p0 = _mm256_set1_ps(probs[j]);
    const float* v0 = v[j] + d0;
#pragma GCC unroll 8
    for (int t = 0; t < W; ++t) even[t] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * t), even[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < W; ++t) _mm256_storeu_ps(out + 8 * t, _mm256_add_ps(even[t], odd[t]));
}

}  // namespace

namespace {

constexpr int64_t kMaxBlock = 256;
// Positions per online-softmax step: two 16-position key segments. A
// group's heads pass over the chunk's keys, then its values, which stay in
// L1 meanwhile (a TinyLlama head's chunk is 8 KiB of F32 keys and 8 KiB of
// values); 16-position steps spent as long on the per-step softmax work as
// on the dot products.
constexpr int64_t kChunk = 32;

void check_shape(const AttentionShape& shape) {
  if (shape.block_size <= 0 || shape.block_size > kMaxBlock)
    throw Error("attention: KV block size " + std::to_string(shape.block_size) +
                " is outside [1, 256]");
}

// One query head's online-softmax state across KV blocks.
struct HeadState {
  float running_max = -std::numeric_limits<float>::infinity();
  float denom = 0.0f;
};

// A chunk of positions runs in three steps for every head of the group —
// all scores (key_scores_*: every head against each key vector loaded once),
// then each head's softmax step, then each head's value sum — so that only
// the chunk's keys, then only its values, need to stay in L1 while the
// group's heads pass over them. Every head does exactly these operations
// whoever calls it, so a head's result does not depend on which other heads
// share the pass.

// The online-softmax step: scales the scores, folds the chunk's maximum into
// the head's state, writes probs[j] = exp(score_j - max) and adds their sum
// to the rescaled denominator. Returns the factor that rescales what the
// head accumulated so far.
float head_softmax(float* scores, int64_t n, float scale, HeadState& st, float* probs) {
  int64_t j = 0;
  // Max is exact, so lanes may find it in any order.
  __m256 vmax = _mm256_set1_ps(st.running_max);
  const __m256 sv = _mm256_set1_ps(scale);
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 x = _mm256_mul_ps(_mm256_load_ps(scores + j), sv);
    _mm256_store_ps(scores + j, x);
    vmax = _mm256_max_ps(vmax, x);
  }
  // A shuffle tree, not a chain of eight scalar maxes (vmax already holds
  // the running maximum in every lane).
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  float block_max = _mm_cvtss_f32(m4);
  for (; j < n; ++j) {
    scores[j] *= scale;
    block_max = std::max(block_max, scores[j]);
  }
  // Rescale what was accumulated so far to the new maximum, once per chunk.
  const float correction = std::exp(st.running_max - block_max);
  st.denom *= correction;
  const __m256 mx = _mm256_set1_ps(block_max);
  for (j = 0; j + 8 <= n; j += 8)
    _mm256_store_ps(probs + j, exp8(_mm256_sub_ps(_mm256_load_ps(scores + j), mx)));
  if (j < n) {
    alignas(32) float tail[8] = {};
    for (int64_t t = j; t < n; ++t) tail[t - j] = scores[t];
    const __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(tail), mx));
    _mm256_store_ps(tail, e);
    for (int64_t t = j; t < n; ++t) probs[t] = tail[t - j];
  }
  // The chunk's probabilities summed as 8 lane sums (positions j ≡ lane
  // mod 8) and hsum8's tree, then the tail in order, then added to the
  // rescaled denominator: a fixed order by position, without a serial chain
  // of dependent adds per head.
  {
    __m256 acc = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) acc = _mm256_add_ps(acc, _mm256_load_ps(probs + j));
    float block_sum = hsum8(acc);
    for (; j < n; ++j) block_sum += probs[j];
    st.denom += block_sum;
  }
  st.running_max = block_max;
  return correction;
}

// out = out·correction + Σ_j probs[j]·v[j].
void head_values(float* out_head, const float* probs, const float* const* v, int64_t n, int64_t hd,
                 float correction, bool avx512) {
  if (avx512 && hd % 16 == 0) {
    detail::accumulate_values_avx512(out_head, probs, v, hd, n, correction);
  } else if (hd % 8 == 0) {
    // 32 output values at a time stay in registers while the chunk's values pass.
    int64_t d0 = 0;
    for (; d0 + 32 <= hd; d0 += 32)
      accumulate_values<4>(out_head + d0, probs, v, d0, n, correction);
    for (; d0 < hd; d0 += 8) accumulate_values<1>(out_head + d0, probs, v, d0, n, correction);
  } else {
    for (int64_t d = 0; d < hd; ++d) {
      float even = out_head[d] * correction, odd = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        float& acc = j % 2 == 0 ? even : odd;
        acc = std::fma(probs[j], v[j][d], acc);
      }
      out_head[d] = even + odd;
    }
  }
}

void finish(const HeadState& st, int64_t hd, float* out_head) {
  const float inv = 1.0f / st.denom;
  for (int64_t d = 0; d < hd; ++d) out_head[d] *= inv;
}

// Calls f(block, off, count, j) for each run of positions [p0, p0 + m) that
// lies in one KV block: position p0 + j is position `off` of `block`. A
// chunk may start and end inside a block; its rows are found by position,
// so the chunking is independent of the KV block size.
template <class Ptr, class F>
void for_each_run(std::span<Ptr const> blocks, int64_t block_size, int64_t p0, int64_t m, F&& f) {
  for (int64_t p = p0; p < p0 + m;) {
    const int64_t bi = p / block_size, off = p % block_size;
    const int64_t cnt = std::min(block_size - off, p0 + m - p);
    f(reinterpret_cast<const char*>(blocks[static_cast<size_t>(bi)]), off, cnt, p - p0);
    p += cnt;
  }
}

// Converts n consecutive stored keys (positions off .. off+n-1 of one
// block) of KV head `h` into a transposed f32 scratch, dst[d·16 + j]. The
// conversion is exact (an f16 value, or an int8 times an f16 scale, is a
// float), so the values equal kv_read_key()'s, lane for lane.
void convert_keys(const KvLayout& l, const char* block, int64_t off, int64_t n, int64_t h,
                  float* dst) {
  const int64_t hd = l.head_dim, bs = l.block_size, first = h * hd;
  if (l.type == DType::F32) {
    const float* src = reinterpret_cast<const float*>(block) + first * bs + off;
    for (int64_t d = 0; d < hd; ++d)
      for (int64_t j = 0; j < n; ++j) dst[d * 16 + j] = src[d * bs + j];
    return;
  }
  if (l.type == DType::F16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(block) + first * bs + off;
    for (int64_t d = 0; d < hd; ++d) {
      const uint16_t* r = src + d * bs;
      float* o = dst + d * 16;
      int64_t j = 0;
      for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(o + j,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + j))));
      for (; j < n; ++j) o[j] = fp16_to_fp32(r[j]);
    }
    return;
  }
  // Q8_0: quants at e·B + p, scales of ggml block e/32 at (e/32)·B + p.
  const int8_t* q = reinterpret_cast<const int8_t*>(block);
  const uint16_t* scales = reinterpret_cast<const uint16_t*>(q + l.kv_dim() * bs);
  alignas(32) float sc[16];
  int64_t scale_row = -1;
  for (int64_t d = 0; d < hd; ++d) {
    const int64_t e = first + d;
    if (e / kQBlock != scale_row) {
      // A head's 32-element blocks share one row of scales per position.
      scale_row = e / kQBlock;
      const uint16_t* s = scales + scale_row * bs + off;
      for (int64_t j = 0; j < n; ++j) sc[j] = fp16_to_fp32(s[j]);
    }
    const int8_t* r = q + e * bs + off;
    float* o = dst + d * 16;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256i v =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + j)));
      _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_load_ps(sc + j)));
    }
    for (; j < n; ++j) o[j] = static_cast<float>(r[j]) * sc[j];
  }
}

// Converts n consecutive stored values of KV head h into f32 rows of hd
// floats at dst (exact, as convert_keys).
void convert_values(const KvLayout& l, const char* block, int64_t off, int64_t n, int64_t h,
                    float* dst) {
  const int64_t hd = l.head_dim, bs = l.block_size;
  const int64_t base = (h * bs + off) * hd;  // element index of (off, h·hd)
  if (l.type == DType::F16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(block) + base;
    int64_t i = 0;
    for (; i + 8 <= n * hd; i += 8)
      _mm256_storeu_ps(dst + i,
                       _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
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
    if (first % 8 == 0) {
      // A run of 8 elements starting at a multiple of 8 stays in one block of 32.
      for (; d + 8 <= hd; d += 8) {
        const __m256 scale = _mm256_set1_ps(_cvtsh_ss(s[(first + d) / kQBlock]));
        const __m256i v =
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + d)));
        _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale));
      }
    }
    for (; d < hd; ++d) o[d] = static_cast<float>(r[d]) * fp16_to_fp32(s[(first + d) / kQBlock]);
  }
}

// The chunk's keys as segments of 16 positions: a full segment that lies in
// one block of an F32 cache is read in place (stride block_size); any other
// (F16/Q8_0, or one that crosses a block or is the partial last one) is
// converted into scratch (16 floats per dimension, lanes past the chunk's
// end zero). Returns the number of segments.
template <class Ptr>
int64_t gather_keys(const KvLayout& l, std::span<Ptr const> blocks, int64_t p0, int64_t m,
                    int64_t h, bool avx512, float* scratch, detail::KeySegment* seg) {
  const int64_t hd = l.head_dim, bs = l.block_size;
  const int64_t n_seg = (m + 15) / 16;
  for (int64_t s = 0; s < n_seg; ++s) {
    const int64_t p = p0 + 16 * s, cnt = std::min<int64_t>(16, m - 16 * s);
    if (l.type == DType::F32 && cnt == 16 && p % bs + 16 <= bs) {
      const float* b = static_cast<const float*>(static_cast<const void*>(blocks[p / bs]));
      seg[s] = {b + h * hd * bs + p % bs, bs};
      continue;
    }
    float* dst = scratch + s * 16 * hd;
    if (cnt < 16)
      for (int64_t d = 0; d < hd; ++d)
        for (int64_t j = cnt; j < 16; ++j) dst[d * 16 + j] = 0.0f;
    for_each_run(blocks, bs, p, cnt, [&](const char* block, int64_t off, int64_t n, int64_t j0) {
      if (avx512 && n == 16 && l.type != DType::F32)
        detail::convert_keys16_avx512(l, block, off, h, dst + j0);
      else
        convert_keys(l, block, off, n, h, dst + j0);
    });
    seg[s] = {dst, 16};
  }
  return n_seg;
}

// Points out[j] at the f32 value row of KV head h for position p0 + j: in
// place for F32, else converted into scratch (m rows of hd floats).
template <class Ptr>
void gather_values(const KvLayout& l, std::span<Ptr const> blocks, int64_t p0, int64_t m, int64_t h,
                   bool avx512, float* scratch, const float** out) {
  const int64_t hd = l.head_dim, bs = l.block_size;
  for_each_run(blocks, bs, p0, m, [&](const char* block, int64_t off, int64_t n, int64_t j0) {
    if (l.type == DType::F32) {
      const float* r = reinterpret_cast<const float*>(block) + (h * bs + off) * hd;
      for (int64_t j = 0; j < n; ++j) out[j0 + j] = r + j * hd;
      return;
    }
    float* dst = scratch + j0 * hd;
    if (avx512)
      detail::convert_values_avx512(l, block, off, n, h, dst);
    else
      convert_values(l, block, off, n, h, dst);
    for (int64_t j = 0; j < n; ++j) out[j0 + j] = dst + j * hd;
  });
}

inline void prefetch_range(const char* begin, const char* end) {
  const auto a = reinterpret_cast<uintptr_t>(begin) & ~uintptr_t{63};
  for (const char* p = reinterpret_cast<const char*>(a); p < end; p += 64)
    _mm_prefetch(p, _MM_HINT_T1);
}

// Asks for KV head h's share of positions [p0, p0 + m) into L2 (L1 holds
// the chunk being computed): in each block, the head's key rows (whole, from
// the first position's line: a head's keys of a block are one run) and value
// rows, and for Q8_0 their scales. Prefetching changes no value.
template <class Ptr>
void prefetch_chunk(const KvLayout& l, std::span<Ptr const> kblocks, std::span<Ptr const> vblocks,
                    int64_t p0, int64_t m, int64_t h) {
  const int64_t hd = l.head_dim, bs = l.block_size, kv_dim = l.kv_dim();
  const size_t es = l.type == DType::F32 ? 4 : l.type == DType::F16 ? 2 : 1;
  for (int64_t p = p0; p < p0 + m;) {
    const int64_t bi = p / bs, off = p % bs, cnt = std::min(bs - off, p0 + m - p);
    const char* kb = reinterpret_cast<const char*>(kblocks[static_cast<size_t>(bi)]);
    const char* vb = reinterpret_cast<const char*>(vblocks[static_cast<size_t>(bi)]);
    prefetch_range(kb + (h * hd * bs + off) * es, kb + ((h * hd + hd - 1) * bs + off + cnt) * es);
    prefetch_range(vb + (h * bs + off) * hd * es, vb + (h * bs + off + cnt) * hd * es);
    if (l.type == DType::Q8_0) {
      const char* ks = kb + kv_dim * bs;
      const int64_t r0 = h * hd / kQBlock, r1 = (h * hd + hd - 1) / kQBlock;
      prefetch_range(ks + (r0 * bs + off) * 2, ks + (r1 * bs + off + cnt) * 2);
      const char* vs = vb + kv_dim * bs;
      prefetch_range(vs + off * (kv_dim / kQBlock) * 2, vs + (off + cnt) * (kv_dim / kQBlock) * 2);
    }
    p += cnt;
  }
}

void check_kv_type(const AttentionShape& shape) {
  const DType t = shape.kv_type;
  if (t != DType::F32 && t != DType::F16 && t != DType::Q8_0)
    throw Error(std::string("attention: KV element type ") + dtype_name(t) +
                " is not one of f32, f16, q8_0");
  if (t == DType::Q8_0 && (shape.n_kv_heads * shape.head_dim) % kQBlock != 0)
    throw Error("attention: q8_0 KV rows need n_kv_heads × head_dim a multiple of 32");
}

// `count` query heads of KV head kv_head (head g's query at q + g·head_dim,
// its output at out + g·head_dim), in one pass over the blocks: each chunk's
// keys and values are gathered (and converted when not F32) once for all of
// them. `Ptr` is const float* or const void* (the block tables callers hold).
template <class Ptr>
void attend_heads(const AttentionShape& shape, const float* q, std::span<Ptr const> key_blocks,
                  std::span<Ptr const> value_blocks, int64_t n_positions, int64_t kv_head,
                  int64_t count, float* out) {
  check_shape(shape);
  check_kv_type(shape);
  const int64_t hd = shape.head_dim;
  if (hd <= 0 || hd > kAttentionMaxHeadDim)
    throw Error("attention: head_dim " + std::to_string(hd) + " is outside [1, " +
                std::to_string(kAttentionMaxHeadDim) + "]");
  constexpr int64_t kMaxGroup = 64;
  if (count > kMaxGroup)
    throw Error("attention: " + std::to_string(count) + " query heads per KV head (at most 64)");
  const int64_t nb = (n_positions + shape.block_size - 1) / shape.block_size;
  if (n_positions < 0 || static_cast<int64_t>(key_blocks.size()) < nb ||
      static_cast<int64_t>(value_blocks.size()) < nb)
    throw Error("attention: block table shorter than the positions it must cover");
  const KvLayout layout{shape.kv_type, shape.n_kv_heads, hd, shape.block_size};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  HeadState st[kMaxGroup];
  // The online softmax steps over chunks of kChunk positions (aligned to
  // position 0, so a row gets the same chunks in prefill and decode, whatever
  // the KV block size): one max, one rescale and one exp pass per chunk and
  // head, over keys and values gathered once for every head of the group.
  // While a chunk is computed the next one is prefetched: it ends at every
  // block, which the hardware prefetchers follow badly.
  alignas(64) float kscratch[kChunk * kAttentionMaxHeadDim];
  alignas(64) float vscratch[kChunk * kAttentionMaxHeadDim];
  detail::KeySegment segs[kChunk / 16];
  const float* vrows[kChunk];
  alignas(64) float scores[kMaxGroup * kChunk];
  alignas(64) float probs[kMaxGroup * kChunk];
  float correction[kMaxGroup];
  for (int64_t d = 0; d < count * hd; ++d) out[d] = 0.0f;
  for (int64_t c0 = 0; c0 < n_positions; c0 += kChunk) {
    const int64_t m = std::min(kChunk, n_positions - c0);
    const int64_t n_seg =
        gather_keys(layout, key_blocks, c0, m, kv_head, shape.avx512, kscratch, segs);
    gather_values(layout, value_blocks, c0, m, kv_head, shape.avx512, vscratch, vrows);
    if (c0 + m < n_positions)
      prefetch_chunk(layout, key_blocks, value_blocks, c0 + m,
                     std::min(kChunk, n_positions - c0 - m), kv_head);
    if (shape.avx512)
      detail::key_scores_avx512(q, count, hd, segs, n_seg, scores, kChunk);
    else
      key_scores_avx2(q, count, hd, segs, n_seg, scores, kChunk);
    for (int64_t g = 0; g < count; ++g)
      correction[g] = head_softmax(scores + g * kChunk, m, scale, st[g], probs + g * kChunk);
    for (int64_t g = 0; g < count; ++g)
      head_values(out + g * hd, probs + g * kChunk, vrows, m, hd, correction[g], shape.avx512);
  }
  for (int64_t g = 0; g < count; ++g) finish(st[g], hd, out + g * hd);
}

}  // namespace

bool attention_avx512_default() {
  static const bool on = cpu_features().has_avx512_core();
  return on;
}

void attention_head(const AttentionShape& shape, const float* q_head,
                    std::span<const void* const> key_blocks,
                    std::span<const void* const> value_blocks, int64_t n_positions, int64_t head,
                    float* out_head) {
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  attend_heads<const void*>(shape, q_head, key_blocks, value_blocks, n_positions, head / group, 1,
                            out_head);
}

void attention_head(const AttentionShape& shape, const float* q_head,
                    std::span<const float* const> key_blocks,
                    std::span<const float* const> value_blocks, int64_t n_positions, int64_t head,
                    float* out_head) {
  if (shape.kv_type != DType::F32) throw Error("attention: float blocks need an f32 KV type");
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  attend_heads<const float*>(shape, q_head, key_blocks, value_blocks, n_positions, head / group, 1,
                             out_head);
}

void attention_kv_group(const AttentionShape& shape, const float* q_row,
                        std::span<const void* const> key_blocks,
                        std::span<const void* const> value_blocks, int64_t n_positions,
                        int64_t kv_head, float* out_row) {
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  const int64_t off = kv_head * group * shape.head_dim;
  attend_heads<const void*>(shape, q_row + off, key_blocks, value_blocks, n_positions, kv_head,
                            group, out_row + off);
}

void attention_kv_group(const AttentionShape& shape, const float* q_row,
                        std::span<const float* const> key_blocks,
                        std::span<const float* const> value_blocks, int64_t n_positions,
                        int64_t kv_head, float* out_row) {
  if (shape.kv_type != DType::F32) throw Error("attention: float blocks need an f32 KV type");
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  const int64_t off = kv_head * group * shape.head_dim;
  attend_heads<const float*>(shape, q_row + off, key_blocks, value_blocks, n_positions, kv_head,
                             group, out_row + off);
}

}  // namespace nucleus::kernels
