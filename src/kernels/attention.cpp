#include "kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/dtype.h"
#include "kernels/vec_math.h"
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
inline __m256 dot8(const float* q, const float* k, int64_t stride, int64_t n) {
  __m256 a[8];
  __m256 qv = _mm256_loadu_ps(q);
#pragma GCC unroll 8
  for (int t = 0; t < 8; ++t) a[t] = _mm256_mul_ps(qv, _mm256_loadu_ps(k + t * stride));
  for (int64_t d = 8; d < n; d += 8) {
    qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t)
      a[t] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + t * stride + d), a[t]);
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
inline void accumulate_values(float* out, const float* probs, const float* vb, int64_t kv_dim,
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
    const float* v0 = vb + j * kv_dim;
    const float* v1 = v0 + kv_dim;
#pragma GCC unroll 8
    for (int t = 0; t < W; ++t) {
      even[t] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * t), even[t]);
      odd[t] = _mm256_fmadd_ps(p1, _mm256_loadu_ps(v1 + 8 * t), odd[t]);
    }
  }
  if (j < n) {
    const __m256 p0 = _mm256_set1_ps(probs[j]);
    const float* v0 = vb + j * kv_dim;
#pragma GCC unroll 8
    for (int t = 0; t < W; ++t) even[t] = _mm256_fmadd_ps(p0, _mm256_loadu_ps(v0 + 8 * t), even[t]);
  }
#pragma GCC unroll 8
  for (int t = 0; t < W; ++t) _mm256_storeu_ps(out + 8 * t, _mm256_add_ps(even[t], odd[t]));
}

}  // namespace

namespace {

constexpr int64_t kMaxBlock = 256;

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

// Folds one KV block (n positions; kb/vb point at this KV head's slice of
// its first position, rows kv_dim apart) into one head's state and output.
// Every head does exactly these operations whoever calls it, so a head's
// result does not depend on which other heads share the pass.
void attend_block(const float* q_head, const float* kb, const float* vb, int64_t n, int64_t hd,
                  int64_t kv_dim, float scale, HeadState& st, float* out_head) {
  alignas(32) float scores[kMaxBlock];
  alignas(32) float probs[kMaxBlock];
  const bool vec = hd % 8 == 0;
  int64_t j = 0;
  if (vec) {
    for (; j + 8 <= n; j += 8)
      _mm256_store_ps(scores + j, dot8(q_head, kb + j * kv_dim, kv_dim, hd));
  }
  for (; j < n; ++j) scores[j] = dot(q_head, kb + j * kv_dim, hd);
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
  // Rescale what was accumulated so far to the new maximum, once per block.
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
  // The block's probabilities summed as 8 lane sums (positions j ≡ lane
  // mod 8) and hsum8's tree, then the tail in order, then added to the
  // rescaled denominator: a fixed order by position, without a serial chain
  // of block_size dependent adds per head.
  {
    __m256 acc = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) acc = _mm256_add_ps(acc, _mm256_load_ps(probs + j));
    float block_sum = hsum8(acc);
    for (; j < n; ++j) block_sum += probs[j];
    st.denom += block_sum;
  }
  if (vec) {
    // 32 output values at a time stay in registers while the block's values pass.
    int64_t d0 = 0;
    for (; d0 + 32 <= hd; d0 += 32)
      accumulate_values<4>(out_head + d0, probs, vb + d0, kv_dim, n, correction);
    for (; d0 < hd; d0 += 8)
      accumulate_values<1>(out_head + d0, probs, vb + d0, kv_dim, n, correction);
  } else {
    for (int64_t d = 0; d < hd; ++d) {
      float even = out_head[d] * correction, odd = 0.0f;
      for (j = 0; j < n; ++j) {
        float& acc = j % 2 == 0 ? even : odd;
        acc = std::fma(probs[j], vb[j * kv_dim + d], acc);
      }
      out_head[d] = even + odd;
    }
  }
  st.running_max = block_max;
}

void finish(const HeadState& st, int64_t hd, float* out_head) {
  const float inv = 1.0f / st.denom;
  for (int64_t d = 0; d < hd; ++d) out_head[d] *= inv;
}

// One KV head's slice of n stored rows as f32: a pointer to the slice and
// the distance between its rows in floats. F32 rows are read in place; F16
// and Q8_0 rows are converted into `scratch` (n × hd floats, rows hd apart).
// The conversion is exact, so the values equal dequantize_row()'s, lane by
// lane, whatever the vector width.
struct Slice {
  const float* data;
  int64_t stride;
};

Slice kv_slice(DType type, const void* block, int64_t n, int64_t kv_dim, int64_t first, int64_t hd,
               float* scratch) {
  if (type == DType::F32) return {static_cast<const float*>(block) + first, kv_dim};
  if (type == DType::F16) {
    const auto* src = static_cast<const uint16_t*>(block) + first;
    for (int64_t j = 0; j < n; ++j) {
      const uint16_t* r = src + j * kv_dim;
      float* o = scratch + j * hd;
      int64_t d = 0;
      for (; d + 8 <= hd; d += 8)
        _mm256_storeu_ps(o + d,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + d))));
      for (; d < hd; ++d) o[d] = fp16_to_fp32(r[d]);
    }
    return {scratch, hd};
  }
  // Q8_0: element e of a row lives in block e / 32 (34 bytes: f16 scale, 32
  // int8). A run of 8 elements starting at a multiple of 8 stays in one block.
  const auto* rows = static_cast<const BlockQ8_0*>(block);
  const int64_t blocks_per_row = kv_dim / kQBlock;
  for (int64_t j = 0; j < n; ++j) {
    const BlockQ8_0* r = rows + j * blocks_per_row;
    float* o = scratch + j * hd;
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
  return {scratch, hd};
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
  // Only F16/Q8_0 blocks are converted into these; F32 ones are read in place.
  // Untouched (so costing nothing) when the blocks are F32.
  alignas(32) float kscratch[kAttentionScratchFloats];
  alignas(32) float vscratch[kAttentionScratchFloats];
  for (int64_t d = 0; d < count * hd; ++d) out[d] = 0.0f;
  for (int64_t b0 = 0, bi = 0; b0 < n_positions; b0 += shape.block_size, ++bi) {
    const int64_t n = std::min(shape.block_size, n_positions - b0);
    const Slice k = kv_slice(shape.kv_type, key_blocks[static_cast<size_t>(bi)], n, kv_dim,
                             kv_head * hd, hd, kscratch);
    const Slice v = kv_slice(shape.kv_type, value_blocks[static_cast<size_t>(bi)], n, kv_dim,
                             kv_head * hd, hd, vscratch);
    for (int64_t g = 0; g < count; ++g)
      attend_block(q + g * hd, k.data, v.data, n, hd, k.stride, scale, st[g], out + g * hd);
  }
  for (int64_t g = 0; g < count; ++g) finish(st[g], hd, out + g * hd);
}

}  // namespace

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
