#pragma once
// The runtime: one forward pass for any batch of rows, reading and writing
// the KV cache. Prefill and decode are the same call with different batches.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/matmul.h"
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
};

// FLOPs the kernels executed, counted per op as they run (2 per multiply-add;
// attention counts only the unmasked positions each row reads).
struct OpCounters {
  int64_t matmul_flops = 0;
  int64_t attention_flops = 0;
  int64_t weight_bytes = 0;  // matrix bytes streamed (once per call)
  int64_t kv_read_bytes = 0;
  int64_t kv_write_bytes = 0;
  int64_t total_flops() const { return matmul_flops + attention_flops; }
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

 private:
  void ensure_scratch(int64_t n_rows);
  void matmul(const kernels::Matrix& w, const float* x, int64_t n, float* y);

  std::shared_ptr<const Model> model_;
  int64_t context_length_;
  ThreadPool pool_;
  KvCache kv_;
  kernels::RopeTable rope_;
  kernels::MatmulWorkspace ws_;
  OpCounters counters_;
  Batch scratch_batch_;
  // Activations for up to capacity_ rows, reused across calls.
  int64_t capacity_ = 0;
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, out_;
  std::vector<int64_t> pos_;
  std::vector<const float*> kblocks_, vblocks_;
};

}  // namespace nucleus
