// Quantized weights: stories260K with its matrices converted to F16, BF16,
// Q8_0 and Q4_0 still tracks Hugging Face's float32 logits. The bounds are
// loose multiples of the measured error (printed), tight enough to catch a
// broken kernel or block layout (which gives errors of order 10).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/hf_checkpoint.h"
#include "formats/model_file.h"
#include "runtime/engine.h"

namespace nucleus {
namespace {

struct Case {
  DType type;
  float max_abs_bound;  // on any logit, any position
};

TEST(EngineQuant, LogitErrorAgainstTransformersPerDtype) {
  std::ifstream in(std::string(NUCLEUS_TEST_DATA) + "/hf_ref/stories260K.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  for (const Case c : {Case{DType::F32, 1e-3f}, Case{DType::F16, 0.05f}, Case{DType::BF16, 0.3f},
                       Case{DType::Q8_0, 0.3f}, Case{DType::Q4_0, 3.0f}}) {
    auto file = std::make_shared<ModelFile>(
        load_model_file(std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf"));
    quantize_weights(*file, c.type);
    auto model = std::make_shared<const Model>(file);
    if (c.type != DType::F32) EXPECT_EQ(model->weight_type(), c.type);
    Engine e(model, {});
    float worst = 0.0f;
    double sum_sq = 0.0;
    int64_t count = 0, argmax_agree = 0, positions = 0;
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
          worst = std::max(worst, d);
          sum_sq += static_cast<double>(d) * d;
          ++count;
          if (row[v] > row[best]) best = static_cast<int32_t>(v);
          if (all[p][v] > all[p][hf_best]) hf_best = static_cast<int32_t>(v);
        }
        argmax_agree += best == hf_best;
        ++positions;
      }
    }
    std::printf("%-5s max |logit - HF| = %.5f  rms = %.5f  argmax agrees at %lld/%lld positions\n",
                dtype_name(c.type), worst, std::sqrt(sum_sq / count),
                static_cast<long long>(argmax_agree), static_cast<long long>(positions));
    EXPECT_LT(worst, c.max_abs_bound) << dtype_name(c.type);
    if (c.type != DType::Q4_0) EXPECT_GE(argmax_agree, positions - 1) << dtype_name(c.type);
  }
}

// The 32000-token Llama 2 vocabulary with F16 matrices (dim 8, one layer):
// loads, runs prefill and decode, and gives finite logits.
TEST(EngineQuant, TinyRandomLlama2F16Runs) {
  auto file = std::make_shared<const ModelFile>(
      load_model_file(std::string(NUCLEUS_TEST_DATA) + "/formats/llama-2-tiny-random.gguf"));
  auto model = std::make_shared<const Model>(file);
  EXPECT_EQ(model->weight_type(), DType::F16);
  EXPECT_EQ(model->config().vocab_size, 32000);
  Engine e(model, {});
  auto seq = e.kv().create();
  std::vector<float> logits;
  e.prefill(seq, std::vector<int32_t>{1, 15043, 3186}, logits);
  Batch b;
  b.add(seq, 29991, true);
  e.forward(b, logits);
  ASSERT_EQ(logits.size(), 32000u);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace nucleus
