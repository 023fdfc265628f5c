#include "kernels/attention.h"

#include <immintrin.h>

#include <cmath>
#include <limits>
#include <vector>

namespace nucleus::kernels {
namespace {

// q·k with a fixed order (8 lane sums, then a fixed tree, then the tail), so
// a score is the same bits whichever batch or phase computes it. AVX2 is the
// project's baseline ISA.
inline float dot(const float* q, const float* k, int64_t n) {
  int64_t d = 0;
  float sum = 0.0f;
  if (n >= 8) {
    __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(k));
    for (d = 8; d + 8 <= n; d += 8)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), acc);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    sum = _mm_cvtss_f32(h);
  }
  for (; d < n; ++d) sum += q[d] * k[d];
  return sum;
}

}  // namespace

void attention_head(const AttentionShape& shape, const float* q_head,
                    std::span<const float* const> key_blocks,
                    std::span<const float* const> value_blocks, int64_t n_positions, int64_t head,
                    float* out_head) {
  const int64_t hd = shape.head_dim;
  const int64_t kv_dim = shape.n_kv_heads * hd;
  const int64_t kv_head = head / (shape.n_heads / shape.n_kv_heads);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  constexpr int64_t kMaxBlock = 256;
  float scores[kMaxBlock];
  float running_max = -std::numeric_limits<float>::infinity();
  float denom = 0.0f;
  for (int64_t d = 0; d < hd; ++d) out_head[d] = 0.0f;

  for (int64_t b0 = 0, bi = 0; b0 < n_positions; b0 += shape.block_size, ++bi) {
    const int64_t n = std::min(shape.block_size, n_positions - b0);
    const float* kb = key_blocks[static_cast<size_t>(bi)] + kv_head * hd;
    const float* vb = value_blocks[static_cast<size_t>(bi)] + kv_head * hd;
    float block_max = running_max;
    for (int64_t j = 0; j < n; ++j) {
      const float* k = kb + j * kv_dim;
      scores[j] = dot(q_head, k, hd) * scale;
      block_max = std::max(block_max, scores[j]);
    }
    // Rescale what was accumulated so far to the new maximum, once per block.
    const float correction = std::exp(running_max - block_max);
    denom *= correction;
    for (int64_t d = 0; d < hd; ++d) out_head[d] *= correction;
    for (int64_t j = 0; j < n; ++j) {
      const float p = std::exp(scores[j] - block_max);
      denom += p;
      const float* v = vb + j * kv_dim;
      for (int64_t d = 0; d < hd; ++d) out_head[d] += p * v[d];
    }
    running_max = block_max;
  }
  const float inv = 1.0f / denom;
  for (int64_t d = 0; d < hd; ++d) out_head[d] *= inv;
}

}  // namespace nucleus::kernels
