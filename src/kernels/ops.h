#pragma once
// Small per-row operations of the LLaMA layer. Each works on one row with a
// fixed reduction order, so results never depend on batching.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace nucleus::kernels {

// out = x / sqrt(mean(x²) + eps) * weight (HF LlamaRMSNorm). out may alias x.
void rmsnorm(float* out, const float* x, const float* weight, int64_t dim, float eps);

// out = silu(gate) * up, elementwise; out may alias gate.
void swiglu(float* out, const float* gate, const float* up, int64_t n);

// Rotary position embedding tables: cos/sin of pos * inv_freq[i] for every
// position up to max_positions and i < head_dim/2.
class RopeTable {
 public:
  RopeTable(const ModelConfig& cfg, int64_t max_positions);
  // Rotates n_heads consecutive heads of head_dim values at position pos,
  // pairing elements as the layout says.
  void apply(float* x, int64_t n_heads, int64_t pos) const;
  int64_t max_positions() const { return max_positions_; }
  // The inverse frequencies (after any rope_scaling), for tests and cost.
  const std::vector<double>& inv_freq() const { return inv_freq_; }

 private:
  int64_t head_dim_;
  int64_t max_positions_;
  RopeLayout layout_;
  std::vector<double> inv_freq_;
  std::vector<float> cos_, sin_;  // [max_positions][head_dim/2]
};

}  // namespace nucleus::kernels
