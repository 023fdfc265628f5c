// stories260K with its matrices converted to BF16, run under both reduction
// definitions for BF16 weights (EngineOptions::bf16_dot): both track Hugging
// Face's float32 logits, and the BF16-dot definition keeps the runtime's
// bit-level invariances (thread count, prefill vs one-by-one decode,
// batching with other sequences). ctest also runs this binary with
// NUCLEUS_NO_AVX512=1, so the engine-level figures hold for the AVX2
// emulation too (the kernel test shows the two ISAs bit-identical).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/hf_checkpoint.h"
#include "formats/model_file.h"
#include "runtime/engine.h"

namespace nucleus {
namespace {

std::shared_ptr<const Model> bf16_model() {
  auto file = std::make_shared<ModelFile>(
      load_model_file(std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf"));
  quantize_weights(*file, DType::BF16);
  return std::make_shared<const Model>(file);
}

EngineOptions options(kernels::Bf16Dot d, int threads = 1) {
  EngineOptions o;
  o.bf16_dot = d;
  o.threads = threads;
  return o;
}

struct Error_ {
  float worst = 0.0f;
  double rms = 0.0;
  int64_t argmax_agree = 0, positions = 0;
};

Error_ error_vs_hf(Engine& e) {
  std::ifstream in(std::string(NUCLEUS_TEST_DATA) + "/hf_ref/stories260K.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  Error_ r;
  double sum_sq = 0.0;
  int64_t count = 0;
  for (const auto& run : ref["runs"]) {
    const auto prompt = run["prompt"].get<std::vector<int32_t>>();
    const auto all = run["prompt_logits_all"].get<std::vector<std::vector<float>>>();
    std::vector<float> logits;
    auto seq = e.kv().create();
    e.prefill(seq, prompt, logits, true);
    e.kv().release(seq);
    for (size_t p = 0; p < prompt.size(); ++p) {
      const float* row = logits.data() + p * e.vocab_size();
      int32_t best = 0, hf_best = 0;
      for (int64_t v = 0; v < e.vocab_size(); ++v) {
        const float d = std::fabs(row[v] - all[p][v]);
        r.worst = std::max(r.worst, d);
        sum_sq += static_cast<double>(d) * d;
        ++count;
        if (row[v] > row[best]) best = static_cast<int32_t>(v);
        if (all[p][v] > all[p][hf_best]) hf_best = static_cast<int32_t>(v);
      }
      r.argmax_agree += best == hf_best;
      ++r.positions;
    }
  }
  r.rms = std::sqrt(sum_sq / static_cast<double>(count));
  return r;
}

TEST(EngineBf16Dot, BothDefinitionsTrackTransformers) {
  auto model = bf16_model();
  ASSERT_EQ(model->weight_type(), DType::BF16);
  for (kernels::Bf16Dot d : {kernels::Bf16Dot::kOff, kernels::Bf16Dot::kOn}) {
    Engine e(model, options(d));
    const Error_ r = error_vs_hf(e);
    std::printf(
        "bf16 weights, bf16-dot %-3s: max |logit - HF| = %.5f  rms = %.5f  argmax %lld/%lld\n",
        kernels::bf16_dot_name(d), r.worst, r.rms, static_cast<long long>(r.argmax_agree),
        static_cast<long long>(r.positions));
    // Measured max (rms): off 0.0800 (0.0158), on 0.0894 (0.0207) — rounding
    // the activations to BF16 as well costs little next to the weights'
    // rounding. Bounds about 2x that (off keeps engine_quant_test's 0.3); one
    // argmax miss allowed for ties.
    EXPECT_LT(r.worst, d == kernels::Bf16Dot::kOff ? 0.3f : 0.2f);
    EXPECT_GE(r.argmax_agree, r.positions - 1);
  }
}

std::vector<float> prompt_logits(Engine& e, const std::vector<int32_t>& prompt) {
  auto seq = e.kv().create();
  std::vector<float> logits;
  e.prefill(seq, prompt, logits, true);
  e.kv().release(seq);
  return logits;
}

const std::vector<int32_t> kPrompt = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376,
                                      298, 315, 421, 395, 317, 426, 338, 401, 396, 267};

TEST(EngineBf16Dot, InvariantAcrossThreadsPrefillDecodeAndBatching) {
  auto model = bf16_model();
  Engine one(model, options(kernels::Bf16Dot::kOn, 1));
  Engine two(model, options(kernels::Bf16Dot::kOn, 2));
  const std::vector<float> a = prompt_logits(one, kPrompt);
  const std::vector<float> b = prompt_logits(two, kPrompt);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "1 vs 2 threads";

  // One token at a time, batched alongside an unrelated sequence.
  auto seq = two.kv().create();
  auto other = two.kv().create();
  std::vector<float> step;
  const int64_t v = two.vocab_size();
  for (size_t p = 0; p < kPrompt.size(); ++p) {
    Batch batch;
    batch.add(other, kPrompt[kPrompt.size() - 1 - p], true);
    batch.add(seq, kPrompt[p], true);
    two.forward(batch, step);
    ASSERT_EQ(step.size(), static_cast<size_t>(2 * v));
    EXPECT_EQ(std::memcmp(step.data() + v, a.data() + p * v, v * sizeof(float)), 0)
        << "decode vs prefill at position " << p;
  }
  two.kv().release(seq);
  two.kv().release(other);

  // The definition really changes the numbers (the option is not ignored).
  Engine off(model, options(kernels::Bf16Dot::kOff, 1));
  const std::vector<float> c = prompt_logits(off, kPrompt);
  EXPECT_NE(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace nucleus
