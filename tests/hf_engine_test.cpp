// HF checkpoints through the whole forward pass. References: corpus.json
// (transformers 4.53.2 logits and greedy continuations for the original
// stas/tiny-random-llama-2 BF16 checkpoint) and stories260K.gguf (the same
// weights as stories260K-hf, in interleaved RoPE order).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/hf_checkpoint.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace nucleus {
namespace {

const std::string kHf = std::string(NUCLEUS_TEST_DATA) + "/hf/";

std::vector<float> last_logits(Engine& e, const std::vector<int32_t>& prompt) {
  auto seq = e.kv().create();
  std::vector<float> logits;
  e.prefill(seq, prompt, logits);
  e.kv().release(seq);
  return logits;
}

std::vector<int32_t> greedy(Engine& e, std::vector<int32_t> prompt, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const auto l = last_logits(e, prompt);
    const int32_t t = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    out.push_back(t);
    prompt.push_back(t);
  }
  return out;
}

TEST(HfEngine, StasTinyRandomMatchesTransformers) {
  std::ifstream in(kHf + "stas-tiny-random-llama-2/corpus.json");
  const auto corpus = nlohmann::json::parse(in);
  const double abs_tol = corpus["logit_tolerance"]["absolute"];
  const double rel_tol = corpus["logit_tolerance"]["relative"];
  auto file =
      std::make_shared<const ModelFile>(load_hf_checkpoint(kHf + "stas-tiny-random-llama-2"));
  Engine e(std::make_shared<const Model>(file), {});
  ASSERT_FALSE(corpus["model_cases"].empty());
  for (const auto& c : corpus["model_cases"]) {
    const std::vector<int32_t> ids = c["input_ids"];
    SCOPED_TRACE(c["input_ids"].dump());
    const auto logits = last_logits(e, ids);
    for (const auto& [id, want] : c["sampled_logits"].items()) {
      const double w = want;
      EXPECT_NEAR(logits[std::stoul(id)], w, abs_tol + rel_tol * std::fabs(w)) << "token " << id;
    }
    const std::vector<int32_t> cont = c["greedy_continuation"];
    EXPECT_EQ(greedy(e, ids, static_cast<int>(cont.size())), cont);
  }
}

TEST(HfEngine, Stories260KHfLogitsEqualGguf) {
  auto hf = std::make_shared<const ModelFile>(load_hf_checkpoint(kHf + "stories260K-hf"));
  auto gg = std::make_shared<const ModelFile>(
      read_gguf(std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf"));
  Engine a(std::make_shared<const Model>(hf), {});
  Engine b(std::make_shared<const Model>(gg), {});
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
  const auto la = last_logits(a, prompt);
  const auto lb = last_logits(b, prompt);
  ASSERT_EQ(la.size(), lb.size());
  // Same weights; only the order of the q.k sums differs (rotate-half vs
  // interleaved dimensions), so the logits agree to float rounding.
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], 1e-4) << i;
  EXPECT_EQ(greedy(a, prompt, 16), greedy(b, prompt, 16));
}

}  // namespace
}  // namespace nucleus
