#include "kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/attention_isa.h"
#include "kernels/dtype.h"
#include "kernels/vec_math.h"
#include "util/cpu_features.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

// q·k with a fixed order (8 lane sums, then a fixed tree, then the tail), so
// a score is the same bits whichever batch or phase computes it. AVX2 is the
// project's baseline ISA.
inline float hsum8(__m256 acc) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

inline float dot(const float* q, const float* k, int64_t n) {
  int64_t d = 0;
  float sum = 0.0f;
  if (n >= 8) {
    __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(k));
    for (d = 8; d + 8 <= n; d += 8)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), acc);
    sum = hsum8(acc);
  }
  for (; d < n; ++d) sum += q[d] * k[d];
  return sum;
}

// Eight keys at once, each with exactly dot()'s arithmetic (n a multiple of
// 8): eight independent FMA chains, then hsum8's tree — lanes i + (i+4),
// then pairs (0,2),(1,3), then (0)+(1) — done for all eight keys together by
// a transpose, leaving the eight scores in one register.
inline __m256 dot8(const float* q, const float* const* k, int64_t n) {
  __m256 a[8];
  __m256 qv = _mm256_loadu_ps(q);
#pragma GCC unroll 8
  for (int t = 0; t < 8; ++t) a[t] = _mm256_mul_ps(qv, _mm256_loadu_ps(k[t]));
  for (int64_t d = 8; d < n; d += 8) {
    qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) a[t] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[t] + d), a[t]);
  }
  // b[t] = [key t: l0+l4, l1+l5, l2+l6, l3+l7 | key t+4: the same].
  __m256 b[4];
#pragma GCC unroll 4
  for (int t = 0; t < 4; ++t)
    b[t] = _mm256_add_ps(_mm256_permute2f128_ps(a[t], a[t + 4], 0x20),
                         _mm256_permute2f128_ps(a[t], a[t + 4], 0x31));
  // c01 = [k0: h0+h2, h1+h3, k1: h0+h2, h1+h3 | k4, k5], c23 likewise.
  const __m256 c01 =
      _mm256_add_ps(_mm256_shuffle_ps(b[0], b[1], 0x44), _mm256_shuffle_ps(b[0], b[1], 0xee));
  const __m256 c23 =
      _mm256_add_ps(_mm256_shuffle_ps(b[2], b[3], 0x44), _mm256_shuffle_ps(b[2], b[3], 0xee));
  return _mm256_add_ps(_mm256_shuffle_ps(c01, c23, 0x88), _mm256_shuffle_ps(c01, c23, 0xdd));
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
// Positions per online-softmax step. A group's heads pass over the chunk's
// keys, then its values, which must stay in L1 meanwhile: F32 rows are read
// in place, where one head's 256-byte slices of 1 KiB rows (TinyLlama) fall
// into a quarter of L1's sets, so 32 rows is what fits; 16-position steps
// spent as long on the per-step softmax work as on the dot products.
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

// One head's share of a chunk of n positions (k[j] / v[j]: this KV head's
// slice of position j's key / value), in three steps that attend_heads runs
// for every head of the group in turn — all scores, then all softmax steps,
// then all value sums — so that only the chunk's keys, then only its
// values, need to stay in L1 while the group's heads pass over them. Every
// head does exactly these operations whoever calls it, so a head's result
// does not depend on which other heads share the pass.

// scores[j] = q·k[j].
void head_scores(const float* q_head, const float* const* k, int64_t n, int64_t hd,
                 float* scores) {
  int64_t j = 0;
  if (hd % 8 == 0) {
    for (; j + 8 <= n; j += 8) _mm256_store_ps(scores + j, dot8(q_head, k + j, hd));
  }
  for (; j < n; ++j) scores[j] = dot(q_head, k[j], hd);
}

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

// Converts one KV head's slice of n stored F16 or Q8_0 rows (starting at `rows`, rows
// kv_dim elements apart) to f32 at dst, rows hd apart. The conversion is
// exact (an f16 value, or an int8 times an f16 scale, is a float), so the
// values equal dequantize_row()'s, lane by lane, whatever the vector width.
void convert_rows(DType type, const void* rows, int64_t n, int64_t kv_dim, int64_t first,
                  int64_t hd, float* dst) {
  if (type == DType::F16) {
    const auto* src = static_cast<const uint16_t*>(rows) + first;
    for (int64_t j = 0; j < n; ++j) {
      const uint16_t* r = src + j * kv_dim;
      float* o = dst + j * hd;
      int64_t d = 0;
      for (; d + 8 <= hd; d += 8)
        _mm256_storeu_ps(o + d,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + d))));
      for (; d < hd; ++d) o[d] = fp16_to_fp32(r[d]);
    }
    return;
  }
  // Q8_0: element e of a row lives in block e / 32 (34 bytes: f16 scale, 32
  // int8). A run of 8 elements starting at a multiple of 8 stays in one block.
  const auto* blocks = static_cast<const BlockQ8_0*>(rows);
  const int64_t blocks_per_row = kv_dim / kQBlock;
  for (int64_t j = 0; j < n; ++j) {
    const BlockQ8_0* r = blocks + j * blocks_per_row;
    float* o = dst + j * hd;
    int64_t d = 0;
    const int64_t e0 = first;
    if (e0 % 8 == 0) {
      for (; d + 8 <= hd; d += 8) {
        const int64_t e = e0 + d;
        const BlockQ8_0& b = r[e / kQBlock];
        // F16C: the same value as fp16_to_fp32, without its branches.
        const __m256 scale = _mm256_set1_ps(_cvtsh_ss(b.d));
        const __m256i q = _mm256_cvtepi8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + e % kQBlock)));
        _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_cvtepi32_ps(q), scale));
      }
    }
    for (; d < hd; ++d) {
      const int64_t e = e0 + d;
      const BlockQ8_0& b = r[e / kQBlock];
      o[d] = static_cast<float>(b.qs[e % kQBlock]) * fp16_to_fp32(b.d);
    }
  }
}

// The byte range [begin, end) a KV head's slice covers within a stored row
// (Q8_0: the whole 34-byte blocks that hold it).
struct ByteRange {
  size_t begin, end;
};
ByteRange slice_bytes(DType type, int64_t first, int64_t hd) {
  if (type == DType::Q8_0)
    return {static_cast<size_t>(first / kQBlock) * sizeof(BlockQ8_0),
            static_cast<size_t>((first + hd + kQBlock - 1) / kQBlock) * sizeof(BlockQ8_0)};
  const size_t es = type == DType::F16 ? 2 : 4;
  return {static_cast<size_t>(first) * es, static_cast<size_t>(first + hd) * es};
}

// Calls f(rows, count, j) for each run of positions [p0, p0 + m) that lies
// in one KV block: `rows` is the stored row of position p0 + j. A chunk may
// start and end inside a block; its rows are found by position, so the
// chunking is independent of the KV block size.
template <class Ptr, class F>
void for_each_run(std::span<Ptr const> blocks, int64_t block_size, size_t row, int64_t p0,
                  int64_t m, F&& f) {
  for (int64_t p = p0; p < p0 + m;) {
    const int64_t bi = p / block_size, off = p % block_size;
    const int64_t cnt = std::min(block_size - off, p0 + m - p);
    f(reinterpret_cast<const char*>(blocks[static_cast<size_t>(bi)]) +
          static_cast<size_t>(off) * row,
      cnt, p - p0);
    p += cnt;
  }
}

// Points out[j] at the f32 slice of KV head `first / hd` for position p0 + j:
// in place for F32 rows, else converted into scratch (m rows of hd floats).
template <class Ptr>
void gather_chunk(DType type, std::span<Ptr const> blocks, int64_t block_size, int64_t p0,
                  int64_t m, int64_t kv_dim, int64_t first, int64_t hd, float* scratch,
                  const float** out) {
  for_each_run(blocks, block_size, row_bytes(type, kv_dim), p0, m,
               [&](const char* rows, int64_t cnt, int64_t j0) {
                 if (type == DType::F32) {
                   const float* r = reinterpret_cast<const float*>(rows) + first;
                   for (int64_t j = 0; j < cnt; ++j) out[j0 + j] = r + j * kv_dim;
                   return;
                 }
                 float* dst = scratch + j0 * hd;
                 convert_rows(type, rows, cnt, kv_dim, first, hd, dst);
                 for (int64_t j = 0; j < cnt; ++j) out[j0 + j] = dst + j * hd;
               });
}

// Asks for the slice's cache lines of positions [p0, p0 + m), into L2 (L1
// holds the chunk being computed). Prefetching changes no value.
template <class Ptr>
void prefetch_chunk(DType type, std::span<Ptr const> blocks, int64_t block_size, int64_t p0,
                    int64_t m, int64_t kv_dim, int64_t first, int64_t hd) {
  const size_t row = row_bytes(type, kv_dim);
  const ByteRange br = slice_bytes(type, first, hd);
  for_each_run(blocks, block_size, row, p0, m, [&](const char* rows, int64_t cnt, int64_t) {
    for (int64_t j = 0; j < cnt; ++j)
      for (size_t b = br.begin & ~size_t{63}; b < br.end; b += 64)
        _mm_prefetch(rows + static_cast<size_t>(j) * row + b, _MM_HINT_T1);
  });
}

void check_kv_type(const AttentionShape& shape) {
  const DType t = shape.kv_type;
  if (t != DType::F32 && t != DType::F16 && t != DType::Q8_0)
    throw Error(std::string("attention: KV element type ") + dtype_name(t) +
                " is not one of f32, f16, q8_0");
  if (t == DType::Q8_0 && (shape.n_kv_heads * shape.head_dim) % kQBlock != 0)
    throw Error("attention: q8_0 KV rows need n_kv_heads × head_dim a multiple of 32");
  if (t != DType::F32 && shape.block_size * shape.head_dim > kAttentionScratchFloats)
    throw Error("attention: KV block size " + std::to_string(shape.block_size) + " × head_dim " +
                std::to_string(shape.head_dim) + " exceeds " +
                std::to_string(kAttentionScratchFloats) + " for an f16/q8_0 cache");
}

// `count` query heads of KV head kv_head (head g's query at q + g·head_dim,
// its output at out + g·head_dim), in one pass over the blocks: each block's
// slice is converted (when not F32) once for all of them. `Ptr` is const
// float* or const void* (the block tables callers hold).
template <class Ptr>
void attend_heads(const AttentionShape& shape, const float* q, std::span<Ptr const> key_blocks,
                  std::span<Ptr const> value_blocks, int64_t n_positions, int64_t kv_head,
                  int64_t count, float* out) {
  check_shape(shape);
  check_kv_type(shape);
  const int64_t hd = shape.head_dim;
  const int64_t kv_dim = shape.n_kv_heads * hd;
  constexpr int64_t kMaxGroup = 64;
  if (count > kMaxGroup)
    throw Error("attention: " + std::to_string(count) + " query heads per KV head (at most 64)");
  const int64_t nb = (n_positions + shape.block_size - 1) / shape.block_size;
  if (n_positions < 0 || static_cast<int64_t>(key_blocks.size()) < nb ||
      static_cast<int64_t>(value_blocks.size()) < nb)
    throw Error("attention: block table shorter than the positions it must cover");
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  HeadState st[kMaxGroup];
  // The online softmax steps over chunks of `chunk` positions (aligned to
  // position 0, so a row gets the same chunks in prefill and decode, whatever
  // the KV block size): one max, one rescale and one exp pass per chunk and
  // head, over K/V row pointers gathered once for every head of the group
  // (F32 rows in place, F16/Q8_0 rows converted into scratch, rows hd
  // apart). While a chunk is computed the
  // next one is prefetched: its rows are strided (one head's slice of each
  // row) and end at every block, which the hardware prefetchers follow badly.
  const int64_t chunk = std::min<int64_t>(kChunk, kAttentionScratchFloats / hd / 8 * 8);
  if (chunk < 8)
    throw Error("attention: head_dim " + std::to_string(hd) + " exceeds " +
                std::to_string(kAttentionScratchFloats / 8));
  alignas(64) float kscratch[kAttentionScratchFloats];
  alignas(64) float vscratch[kAttentionScratchFloats];
  const float* krows[kChunk];
  const float* vrows[kChunk];
  alignas(32) float scores[kMaxGroup * kChunk];
  alignas(32) float probs[kMaxGroup * kChunk];
  float correction[kMaxGroup];
  for (int64_t d = 0; d < count * hd; ++d) out[d] = 0.0f;
  const int64_t first = kv_head * hd;
  const DType t = shape.kv_type;
  const int64_t bs = shape.block_size;
  for (int64_t c0 = 0; c0 < n_positions; c0 += chunk) {
    const int64_t m = std::min(chunk, n_positions - c0);
    gather_chunk(t, key_blocks, bs, c0, m, kv_dim, first, hd, kscratch, krows);
    gather_chunk(t, value_blocks, bs, c0, m, kv_dim, first, hd, vscratch, vrows);
    if (c0 + m < n_positions) {
      const int64_t mn = std::min(chunk, n_positions - c0 - m);
      prefetch_chunk(t, key_blocks, bs, c0 + m, mn, kv_dim, first, hd);
      prefetch_chunk(t, value_blocks, bs, c0 + m, mn, kv_dim, first, hd);
    }
    for (int64_t g = 0; g < count; ++g) head_scores(q + g * hd, krows, m, hd, scores + g * chunk);
    for (int64_t g = 0; g < count; ++g)
      correction[g] = head_softmax(scores + g * chunk, m, scale, st[g], probs + g * chunk);
    for (int64_t g = 0; g < count; ++g)
      head_values(out + g * hd, probs + g * chunk, vrows, m, hd, correction[g], shape.avx512);
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
