#include "kernels/attention.h"

#include <cmath>
#include <limits>
#include <vector>

namespace nucleus::kernels {

void attention_head(const AttentionShape& shape, const float* q_head,
                    std::span<const float* const> key_blocks,
                    std::span<const float* const> value_blocks, int64_t n_positions,
                    int64_t head, float* out_head) {
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
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += q_head[d] * k[d];
      scores[j] = dot * scale;
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
