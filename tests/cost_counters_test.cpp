// The engine's measured OpCounters against the analytic cost model
// (cost/cost.h) on the bundled stories260K: both count the same operations
// under the same conventions, so they must agree exactly. The analytic
// "remainder" (norms, RoPE, softmax, SwiGLU, residual adds) has no engine
// counter; the engine's matmul FLOPs are the analytic projections + MLP +
// lm_head, its attention FLOPs the analytic QKᵀ + AV.
//
// Then the shape of a whole generation, from the counters alone: without the
// KV cache each step re-runs the sequence, so per-step FLOPs grow
// quadratically in the step number (constant, non-zero second difference);
// with it, a decode step's FLOPs grow linearly (second difference zero).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cost/cost.h"
#include "formats/model_file.h"
#include "generate/generator.h"
#include "runtime/engine.h"

namespace nucleus {
namespace {

std::shared_ptr<const Model> stories() {
  auto file = std::make_shared<const ModelFile>(
      load_model_file(std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf"));
  return std::make_shared<const Model>(file);
}

// The analytic parts the engine counts, as integers (all are exact in double).
struct Expected {
  int64_t matmul, attention, weight_bytes, kv_read, kv_write;
};

Expected counted_part(const cost::PhaseCost& c) {
  return {static_cast<int64_t>(c.attention_projections() + c.mlp() + c.lm_head),
          static_cast<int64_t>(c.attention_scores()), static_cast<int64_t>(c.weight_bytes),
          static_cast<int64_t>(c.kv_read_bytes), static_cast<int64_t>(c.kv_write_bytes)};
}

void expect_equal(const OpCounters& got, const cost::PhaseCost& analytic) {
  const Expected e = counted_part(analytic);
  EXPECT_EQ(got.matmul_flops, e.matmul);
  EXPECT_EQ(got.attention_flops, e.attention);
  EXPECT_EQ(got.weight_bytes, e.weight_bytes);
  EXPECT_EQ(got.kv_read_bytes, e.kv_read);
  EXPECT_EQ(got.kv_write_bytes, e.kv_write);
}

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};

TEST(CostCounters, PrefillMatchesAnalyticExactly) {
  auto model = stories();
  const ModelConfig& cfg = model->config();
  ASSERT_EQ(model->weight_type(), DType::F32);  // the analytic dtype below
  Engine e(model, {});
  std::vector<float> logits;
  e.prefill(e.kv().create(), kPrompt, logits);
  expect_equal(e.counters(), cost::prefill_cost(cfg, DType::F32, 1, 5, 1));

  // A hand check of one term, independent of cost.cpp: stories260K has 5
  // layers, 8 heads of 8 dims; 5 rows attend to 1+2+3+4+5 = 15 positions,
  // 4·8 FLOPs (QKᵀ and AV, 2·head_dim each) per position and head.
  EXPECT_EQ(e.counters().attention_flops, 5 * 8 * 4 * 8 * 15);

  // Logits for every row: the lm_head runs on 5 rows.
  e.reset_counters();
  e.prefill(e.kv().create(), kPrompt, logits, /*all_positions=*/true);
  expect_equal(e.counters(), cost::prefill_cost(cfg, DType::F32, 1, 5, 5));

  // No row wants logits: neither the output norm nor the lm_head is read.
  e.reset_counters();
  Batch b;
  const int32_t seq = e.kv().create();
  for (int32_t t : kPrompt) b.add(seq, t, false);
  e.forward(b, logits);
  EXPECT_TRUE(logits.empty());
  expect_equal(e.counters(), cost::prefill_cost(cfg, DType::F32, 1, 5, 0));
}

TEST(CostCounters, DecodeStepMatchesAnalyticExactly) {
  auto model = stories();
  Engine e(model, {});
  std::vector<float> logits;
  const int32_t seq = e.kv().create();
  e.prefill(seq, kPrompt, logits);
  for (int64_t context = 6; context <= 8; ++context) {
    e.reset_counters();
    Batch b;
    b.add(seq, 400, true);
    e.forward(b, logits);
    expect_equal(e.counters(), cost::decode_step_cost(model->config(), DType::F32, 1, context));
  }
}

TEST(CostCounters, BatchOfTwoDecodeRowsMatchesAnalytic) {
  // Two sequences at the same length decoded in one batch: weights are read
  // once for both rows, as cost's batch convention says.
  auto model = stories();
  Engine e(model, {});
  std::vector<float> logits;
  const int32_t a = e.kv().create(), b = e.kv().create();
  e.prefill(a, kPrompt, logits);
  e.prefill(b, kPrompt, logits);
  e.reset_counters();
  Batch batch;
  batch.add(a, 400, true);
  batch.add(b, 401, true);
  e.forward(batch, logits);
  expect_equal(e.counters(), cost::decode_step_cost(model->config(), DType::F32, 2, 6));
}

// Decode-phase counters of a greedy generation of n tokens (exactly n: EOS
// is suppressed until then).
OpCounters decode_counters(Engine& e, int64_t n, bool kv_cache) {
  GenerateRequest req;
  req.prompt = kPrompt;
  req.kv_cache = kv_cache;
  req.config.max_new_tokens = n;
  req.config.min_new_tokens = n;
  const GenerateResult r = generate(e, nullptr, req);
  EXPECT_EQ(static_cast<int64_t>(r.sequences.front().tokens.size()), n);
  return r.decode.counters;
}

TEST(CostCounters, GenerationGrowsQuadraticallyWithoutCacheLinearlyWithIt) {
  auto model = stories();
  const ModelConfig& cfg = model->config();
  Engine e(model, {});
  const int64_t p = static_cast<int64_t>(kPrompt.size());
  // Step producing token n (n >= 2) = decode counters(n) - decode counters(n-1).
  std::vector<int64_t> cached, uncached, cached_kv_read;
  OpCounters prev_c = decode_counters(e, 1, true), prev_u = decode_counters(e, 1, false);
  EXPECT_EQ(prev_c.total_flops(), 0);  // the first token comes from the prefill
  for (int64_t n = 2; n <= 7; ++n) {
    const OpCounters c = decode_counters(e, n, true), u = decode_counters(e, n, false);
    cached.push_back(c.total_flops() - prev_c.total_flops());
    uncached.push_back(u.total_flops() - prev_u.total_flops());
    cached_kv_read.push_back(c.kv_read_bytes - prev_c.kv_read_bytes);
    // Each step is exactly what the analytic model says it is.
    const Expected dc = counted_part(cost::decode_step_cost(cfg, DType::F32, 1, p + n - 1));
    const Expected pu = counted_part(cost::prefill_cost(cfg, DType::F32, 1, p + n - 1, 1));
    EXPECT_EQ(cached.back(), dc.matmul + dc.attention) << "n=" << n;
    EXPECT_EQ(uncached.back(), pu.matmul + pu.attention) << "n=" << n;
    prev_c = c;
    prev_u = u;
  }
  // One more attended position costs, per layer and head, 2·head_dim for QKᵀ
  // and 2·head_dim for AV: 5 layers · 8 heads · 4 · 8 = 1280 FLOPs.
  const int64_t per_position = cfg.n_layers * cfg.n_heads * 4 * cfg.head_dim;
  ASSERT_EQ(per_position, 1280);
  for (size_t i = 1; i < cached.size(); ++i) {
    // Cached: linear, the step grows by one attended position.
    EXPECT_EQ(cached[i] - cached[i - 1], per_position);
    // KV reads grow by one position's K and V: 5 layers · 2 · 32 · 4 bytes.
    EXPECT_EQ(cached_kv_read[i] - cached_kv_read[i - 1], 5 * 2 * 32 * 4);
  }
  for (size_t i = 2; i < uncached.size(); ++i) {
    // No cache: a pass over s tokens attends to s(s+1)/2 positions, so the
    // second difference in s is one position's cost: quadratic growth.
    EXPECT_EQ(uncached[i] - 2 * uncached[i - 1] + uncached[i - 2], per_position);
    EXPECT_EQ(cached[i] - 2 * cached[i - 1] + cached[i - 2], 0);
    // The first difference of the uncached step is a whole row's matmuls
    // plus attention: far above the cached step's.
    EXPECT_GT(uncached[i] - uncached[i - 1], per_position);
  }
}

}  // namespace
}  // namespace nucleus
