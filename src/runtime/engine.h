#pragma once
// The runtime: one forward pass for any batch of rows, reading and writing
// the KV cache. Prefill and decode are the same call with different batches.
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/matmul_bf16dot.h"
#include "kernels/ops.h"
#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/batch.h"
#include "util/thread_pool.h"

namespace nucleus {

struct EngineOptions {
  int threads = 1;
  int64_t max_sequences = 8;  // sizes the KV pool: max_sequences × context positions
  int64_t kv_block_size = 16;
  int64_t context_length = 0;  // 0 = the model's
  int64_t kv_blocks = 0;       // KV pool size in blocks; 0 = max_sequences × context
  // Element type of the KV cache: F32, F16 or Q8_0 (kv/kv_cache.h).
  DType kv_type = DType::F32;
  // Reduction definition for BF16 weight matrices (kernels/matmul_bf16dot.h):
  // auto = the BF16 dot product only where it outruns F32 FMA on this CPU.
  // Off by default: a timing probe must not change results from one machine
  // (or one load) to the next; `auto` is opt-in.
  kernels::Bf16Dot bf16_dot = kernels::Bf16Dot::kOff;
};

// Work the kernels executed, counted per op as they run. Same conventions as
// the analytic model in cost/cost.h, so the two agree exactly: 2 FLOPs per
// multiply-add; attention counts only the unmasked positions each row reads
// (QKᵀ and AV, 2·head_dim each per position and head). The element-wise
// remainder (norms, RoPE, softmax, SwiGLU, residual adds), which cost.h lists
// as `remainder`, is not counted here.
struct OpCounters {
  int64_t matmul_flops = 0;     // = cost's projections + MLP + lm_head
  int64_t attention_flops = 0;  // = cost's attn_qk + attn_av
  // Weights read by the pass: each matrix once per call (batch rows share it),
  // the gathered embedding rows, and the f32 norm weights.
  int64_t weight_bytes = 0;
  int64_t kv_read_bytes = 0;
  int64_t kv_write_bytes = 0;
  int64_t total_flops() const { return matmul_flops + attention_flops; }
};

// Sees every intermediate output of a forward pass, in execution order, as a
// row-major rows × width f32 matrix (rows = the batch rows, in order; for
// "output_norm" and "logits" only the rows that asked for logits). `data` is
// valid only during the call. Layer -1 is "embedding"; layer n_layers holds
// "output_norm" and "logits". Per decoder layer: attn_norm, q, k (both after
// RoPE), v, attn_out (before wo), attn_proj, resid_attn, ffn_norm, ffn_gate,
// ffn_up, ffn_act (silu(gate)·up), ffn_down, resid_ffn. Called on the thread
// that runs forward().
struct ActivationObserver {
  virtual ~ActivationObserver() = default;
  virtual void on_activation(int64_t layer, std::string_view name, const float* data, int64_t rows,
                             int64_t width) = 0;
};

class Engine {
 public:
  Engine(std::shared_ptr<const Model> model, const EngineOptions& options);

  const Model& model() const { return *model_; }
  const ModelConfig& config() const { return model_->config(); }
  KvCache& kv() { return kv_; }
  int64_t context_length() const { return context_length_; }
  int64_t vocab_size() const { return config().vocab_size; }
  ThreadPool& pool() { return pool_; }

  // Runs every row: appends its K/V to its sequence (positions follow the
  // sequence's current length, in row order) and writes the logits of rows
  // with `logits` set, in row order, into `logits` (resized to n × vocab).
  // Validates ids, sequences and context length before touching anything.
  void forward(const Batch& batch, std::vector<float>& logits);

  // Prefill: the whole prompt of one sequence in one batched pass. Returns
  // the last position's logits, or every position's when all_positions.
  void prefill(int32_t seq, std::span<const int32_t> tokens, std::vector<float>& logits,
               bool all_positions = false);

  const OpCounters& counters() const { return counters_; }
  void reset_counters() { counters_ = {}; }

  // Null (the default) turns observation off. The engine does not own it.
  void set_observer(ActivationObserver* observer) { observer_ = observer; }

 private:
  void ensure_scratch(int64_t n_rows);
  void matmul(const kernels::Matrix& w, const float* x, int64_t n, float* y);
  // One predictable branch per op when nobody observes: the hot path stays as is.
  void observe(int64_t layer, std::string_view name, const std::vector<float>& buf, int64_t rows,
               int64_t width) {
    if (observer_ != nullptr) observer_->on_activation(layer, name, buf.data(), rows, width);
  }

  std::shared_ptr<const Model> model_;
  int64_t context_length_;
  ThreadPool pool_;
  KvCache kv_;
  kernels::RopeTable rope_;
  kernels::MatmulWorkspace ws_;
  bool bf16_dot_ = false;  // EngineOptions::bf16_dot, resolved once
  OpCounters counters_;
  ActivationObserver* observer_ = nullptr;
  Batch scratch_batch_;
  std::vector<std::pair<int32_t, int64_t>> added_;  // rows per sequence in a batch
  // Activations for up to capacity_ rows, reused across calls.
  int64_t capacity_ = 0;
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, out_;
  std::vector<int64_t> pos_;
  // Per forward call: each row's index in added_, and per layer the K/V
  // block tables of the batch's sequences (sequence s at table_off_[s]).
  std::vector<int32_t> row_seq_;
  std::vector<int64_t> table_off_;
  std::vector<const void*> kblocks_, vblocks_;
};

}  // namespace nucleus
