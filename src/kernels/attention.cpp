#include "kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

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
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float block_max = st.running_max;
  for (float v : lanes) block_max = std::max(block_max, v);
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
  for (j = 0; j < n; ++j) st.denom += probs[j];
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

}  // namespace

void attention_head(const AttentionShape& shape, const float* q_head,
                    std::span<const float* const> key_blocks,
                    std::span<const float* const> value_blocks, int64_t n_positions, int64_t head,
                    float* out_head) {
  check_shape(shape);
  const int64_t hd = shape.head_dim;
  const int64_t kv_dim = shape.n_kv_heads * hd;
  const int64_t kv_head = head / (shape.n_heads / shape.n_kv_heads);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  HeadState st;
  for (int64_t d = 0; d < hd; ++d) out_head[d] = 0.0f;
  for (int64_t b0 = 0, bi = 0; b0 < n_positions; b0 += shape.block_size, ++bi) {
    const int64_t n = std::min(shape.block_size, n_positions - b0);
    attend_block(q_head, key_blocks[static_cast<size_t>(bi)] + kv_head * hd,
                 value_blocks[static_cast<size_t>(bi)] + kv_head * hd, n, hd, kv_dim, scale, st,
                 out_head);
  }
  finish(st, hd, out_head);
}

void attention_kv_group(const AttentionShape& shape, const float* q_row,
                        std::span<const float* const> key_blocks,
                        std::span<const float* const> value_blocks, int64_t n_positions,
                        int64_t kv_head, float* out_row) {
  check_shape(shape);
  const int64_t hd = shape.head_dim;
  const int64_t kv_dim = shape.n_kv_heads * hd;
  const int64_t group = shape.n_heads / shape.n_kv_heads;
  constexpr int64_t kMaxGroup = 64;
  if (group > kMaxGroup)
    throw Error("attention: " + std::to_string(group) + " query heads per KV head (at most 64)");
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  HeadState st[kMaxGroup];
  const int64_t h0 = kv_head * group;
  for (int64_t d = 0; d < group * hd; ++d) out_row[h0 * hd + d] = 0.0f;
  for (int64_t b0 = 0, bi = 0; b0 < n_positions; b0 += shape.block_size, ++bi) {
    const int64_t n = std::min(shape.block_size, n_positions - b0);
    const float* kb = key_blocks[static_cast<size_t>(bi)] + kv_head * hd;
    const float* vb = value_blocks[static_cast<size_t>(bi)] + kv_head * hd;
    for (int64_t g = 0; g < group; ++g)
      attend_block(q_row + (h0 + g) * hd, kb, vb, n, hd, kv_dim, scale, st[g],
                   out_row + (h0 + g) * hd);
  }
  for (int64_t g = 0; g < group; ++g) finish(st[g], hd, out_row + (h0 + g) * hd);
}

}  // namespace nucleus::kernels
