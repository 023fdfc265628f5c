#pragma once
// The analytic cost of running a LLaMA-family model: FLOPs split by part,
// bytes of weights and KV cache moved, KV-cache memory, arithmetic intensity.
//
// Conventions (every count below follows them):
// - A multiply-add counts as 2 FLOPs; a matrix of shape in x out applied to one
//   row costs 2·in·out.
// - Causal attention counts only the useful (unmasked) work, which is what the
//   engine computes: a row at position i attends to i+1 positions, so a prefill
//   of s tokens (starting at position 0) costs per layer and query head
//   QKᵀ = 2·head_dim·Σ_{i<s}(i+1) = head_dim·s(s+1), and the same for softmax·V;
//   a decode step at context length c (the new token at position c-1, counting
//   itself) costs 2·head_dim·c for each.
// - Logits are computed only for the rows that need them (prefill: the last
//   position by default; `logits_rows` per sequence).
// - The "generic" column is the lecture's per-layer formula 24·b·s·h² + 4·b·s²·h
//   (multi-head attention, a two-matrix h->4h->h MLP, full s² scores with no
//   causal mask, no lm_head in the per-layer sum).
// - The remainder (RMSNorm, RoPE, softmax, SwiGLU, residual adds) is counted with
//   these per-element costs: RMSNorm 4 per element (square+sum, scale, weight),
//   RoPE 3 per rotated element (a 2x2 rotation: 4 mul + 2 add per pair),
//   softmax 5 per attended score (scale, subtract max, exp, sum, normalise),
//   SwiGLU 5 per hidden element (negate, exp, add, divide, multiply), residual
//   add 1 per element, two per layer.
// - Bytes: weights are read once per forward pass (batch rows share them) at the
//   weight dtype's bytes per weight including block scales; norm weights are f32;
//   the embedding is read only for the gathered rows. The KV cache is f32. KV
//   reads count the K and V rows each query row streams (positions 0..i), once
//   per KV head (GQA heads of a group share the stream), before any reuse by a
//   CPU cache. Activation traffic is not counted.
// - The engine measures the same work as it runs (OpCounters in runtime/engine.h)
//   and must agree exactly (tests/cost_counters_test.cpp): its matmul FLOPs are
//   projections + MLP + lm_head here, its attention FLOPs attn_qk + attn_av, and
//   its bytes weight/KV bytes here. It has no counter for the remainder.
#include <cstdint>
#include <string>
#include <vector>

#include "formats/tensor.h"
#include "model/config.h"

namespace nucleus::cost {

// Bytes of the KV cache when it holds `tokens` positions for each of `batch`
// sequences: 2 (K and V) · layers · tokens · kv_dim · 4 (f32) · batch.
int64_t kv_cache_bytes(const ModelConfig& cfg, int64_t tokens, int64_t batch);

// Bytes of a rows x cols weight matrix in dtype (each row padded to whole blocks).
int64_t matrix_bytes(DType dtype, int64_t rows, int64_t cols);

struct PhaseCost {
  // FLOPs, summed over layers and the batch.
  double attn_q = 0, attn_k = 0, attn_v = 0, attn_o = 0;
  double attn_qk = 0;  // QKᵀ scores, causal (unmasked) only
  double attn_av = 0;  // softmax(scores)·V
  double mlp_gate = 0, mlp_up = 0, mlp_down = 0;
  double lm_head = 0;
  double remainder = 0;  // norms, RoPE, softmax, SwiGLU, residual adds
  double total = 0;

  // Bytes moved.
  double weight_bytes = 0;    // weights read by this forward pass
  double kv_read_bytes = 0;   // K and V rows streamed by attention
  double kv_write_bytes = 0;  // new K and V rows stored
  double kv_cache_bytes = 0;  // KV memory held after this phase
  double total_bytes() const { return weight_bytes + kv_read_bytes + kv_write_bytes; }
  // FLOPs per byte moved (weights + KV).
  double arithmetic_intensity() const {
    double b = total_bytes();
    return b > 0 ? total / b : 0;
  }

  double attention_projections() const { return attn_q + attn_k + attn_v + attn_o; }
  double attention_scores() const { return attn_qk + attn_av; }
  double mlp() const { return mlp_gate + mlp_up + mlp_down; }
};

// The lecture's generic formula for the same shape (MHA, 4h MLP, no causal mask):
// QKV+O 8·b·s·h², MLP 16·b·s·h², QKᵀ + AV 4·b·s²·h per layer, with s query rows
// attending to `context` positions (prefill: context = s; a decode step: s = 1).
struct GenericCost {
  // Summed over the layers:
  double qkvo = 0;       // n_layers · 8·b·rows·h²
  double mlp = 0;        // n_layers · 16·b·rows·h² (up h->4h, down 4h->h)
  double attn = 0;       // n_layers · 4·b·rows·context·h (QKᵀ and AV, 2 each)
  double layers = 0;     // qkvo + mlp + attn
  double per_layer = 0;  // layers / n_layers: the formula itself
  double lm_head = 0;    // 2·b·logits_rows·h·vocab, listed apart from the formula
  double total = 0;      // layers + lm_head
};

// Prefill of `tokens` positions starting at position 0 for `batch` sequences,
// with logits for the last `logits_rows` positions of each sequence.
PhaseCost prefill_cost(const ModelConfig& cfg, DType dtype, int64_t batch, int64_t tokens,
                       int64_t logits_rows = 1);
// One decode step: a new token at position context_len-1 attending to
// context_len positions (itself included), logits for it.
PhaseCost decode_step_cost(const ModelConfig& cfg, DType dtype, int64_t batch, int64_t context_len);
// Generic formula for `rows` query rows per sequence attending to `context`
// positions each (prefill: rows = context = s; decode step: rows = 1).
GenericCost generic_cost(const ModelConfig& cfg, int64_t batch, int64_t rows, int64_t context,
                         int64_t logits_rows = 1);

// A whole generation: a prompt of `prompt` tokens, then `new_tokens` tokens.
// With the KV cache: one prefill (its logits give token 1), then new_tokens-1
// decode steps at contexts prompt+1 .. prompt+new_tokens-1. Without it: token k
// needs a full forward pass over prompt+k-1 tokens (logits for the last row).
struct RunCost {
  bool kv_cache = true;
  int64_t prompt = 0, new_tokens = 0, batch = 1;
  PhaseCost total;  // summed over all steps; kv_cache_bytes = peak
  // Per generated token k = 1..new_tokens (index k-1): FLOPs of the step that
  // produced it, cumulative FLOPs, KV memory held once it is produced.
  std::vector<double> step_flops;
  std::vector<double> cumulative_flops;
  std::vector<double> cumulative_bytes;  // weights + KV traffic
  std::vector<double> kv_memory_bytes;
};

// Without the cache no KV memory persists between steps; kv_memory_bytes then
// holds the transient K and V of one layer for the current pass (they can be
// dropped layer by layer).
RunCost run_cost(const ModelConfig& cfg, DType dtype, int64_t prompt, int64_t new_tokens,
                 int64_t batch, bool kv_cache);

// Named shapes for costing without a model file:
// "tinyllama-1.1b", "llama-7b", "llama3-8b", "stories260k". Throws Error otherwise.
ModelConfig named_shape(const std::string& name);
std::vector<std::string> named_shape_names();

}  // namespace nucleus::cost
