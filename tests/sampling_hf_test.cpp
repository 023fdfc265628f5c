// The processor/warper chain against Hugging Face transformers 4.40.2: for
// each recorded setting, HF's own chain was applied to real stories260K
// logits; we rebuild the chain from the same settings and compare the kept
// ids, the processed logits and the probabilities.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sampling/generation_config.h"
#include "sampling/math.h"
#include "sampling/select.h"

using nlohmann::json;
using namespace nucleus::sampling;

namespace {

json load(const std::string& name) {
  std::ifstream in(std::string(NUCLEUS_TEST_DATA) + "/sampling/" + name);
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in);
}

// HF class name -> our processor name.
std::string our_name(const std::string& hf) {
  static const std::map<std::string, std::string> m = {
      {"TemperatureLogitsWarper", "temperature"},
      {"TopKLogitsWarper", "top_k"},
      {"TopPLogitsWarper", "top_p"},
      {"TypicalLogitsWarper", "typical_p"},
      {"EpsilonLogitsWarper", "epsilon_cutoff"},
      {"EtaLogitsWarper", "eta_cutoff"},
      {"RepetitionPenaltyLogitsProcessor", "repetition_penalty"},
      {"NoRepeatNGramLogitsProcessor", "no_repeat_ngram"},
  };
  auto it = m.find(hf);
  return it == m.end() ? "unknown:" + hf : it->second;
}

GenerationConfig config_from(const json& s) {
  GenerationConfig g;
  g.do_sample = true;
  g.temperature = s.value("temperature", 1.0);
  g.top_k = s.value("top_k", 0);
  g.top_p = s.value("top_p", 1.0);
  g.typical_p = s.value("typical_p", 1.0);
  g.repetition_penalty = s.value("repetition_penalty", 1.0);
  g.epsilon_cutoff = s.value("epsilon_cutoff", 0.0);
  g.eta_cutoff = s.value("eta_cutoff", 0.0);
  g.no_repeat_ngram_size = s.value("no_repeat_ngram_size", 0);
  return g;
}

struct Totals {
  int settings = 0;
  double max_prob_diff = 0.0;
  double max_logit_rel_diff = 0.0;
};

void check_file(const std::string& name, Totals& t) {
  const json doc = load(name);
  for (const json& run : doc.at("runs")) {
    const std::vector<int32_t> prompt = run.at("prompt").get<std::vector<int32_t>>();
    const std::vector<float> raw = run.at("prompt_logits_last").get<std::vector<float>>();
    for (const json& f : run.at("filters")) {
      const std::string spec = f.at("spec").get<std::string>() + " (prompt length " +
                               std::to_string(prompt.size()) + ")";
      SCOPED_TRACE(name + ": " + spec);
      const GenerationConfig g = config_from(f.at("settings"));
      const ProcessorChain chain = build_chain(g);

      std::vector<std::string> want_names;
      for (const json& p : f.at("pipeline")) want_names.push_back(our_name(p.get<std::string>()));
      EXPECT_EQ(chain.names(), want_names) << chain.describe();

      std::vector<float> row = raw;
      chain.apply(row, make_view(prompt, static_cast<int64_t>(prompt.size())));

      const json& hf_logits = f.at("processed_logits");
      const std::vector<float> hf_probs = f.at("probs").get<std::vector<float>>();
      ASSERT_EQ(hf_logits.size(), row.size());
      ASSERT_EQ(hf_probs.size(), row.size());
      int64_t kept = 0;
      int mismatched = 0;
      for (size_t i = 0; i < row.size(); ++i) {
        const bool hf_kept = !hf_logits[i].is_null();  // null encodes -inf
        const bool our_kept = row[i] != -INFINITY;
        kept += our_kept ? 1 : 0;
        if (hf_kept != our_kept) {
          if (++mismatched <= 5)
            ADD_FAILURE() << "id " << i << ": HF kept=" << hf_kept << ", ours=" << our_kept;
          continue;
        }
        if (hf_kept) {
          const float want = hf_logits[i].get<float>();
          const double rel = std::fabs(row[i] - want) / std::max(1.0f, std::fabs(want));
          t.max_logit_rel_diff = std::max(t.max_logit_rel_diff, rel);
          EXPECT_LE(rel, 1e-6) << "logit of id " << i << ": ours " << row[i] << " HF " << want;
        }
      }
      EXPECT_EQ(kept, f.at("num_kept").get<int64_t>());

      const std::vector<float> probs = softmax(row);
      for (size_t i = 0; i < row.size(); ++i) {
        const double d = std::fabs(static_cast<double>(probs[i]) - hf_probs[i]);
        t.max_prob_diff = std::max(t.max_prob_diff, d);
        EXPECT_LE(d, 1e-5) << "prob of id " << i;
      }
      // Kept ids by probability: HF lists them best first.
      const std::vector<int32_t> hf_order = f.at("kept_ids_by_prob").get<std::vector<int32_t>>();
      ASSERT_EQ(static_cast<int64_t>(hf_order.size()), f.at("num_kept").get<int64_t>());
      for (int32_t id : hf_order)
        EXPECT_NE(row.at(static_cast<size_t>(id)), -INFINITY) << "id " << id;
      ++t.settings;
    }
  }
}

}  // namespace

TEST(SamplingHf, FiltersFileMatchesHf) {
  Totals t;
  check_file("stories260K_filters.json", t);
  EXPECT_EQ(t.settings, 22);
  std::printf("[hf filters] %d settings, max |prob diff| %.3g, max rel logit diff %.3g\n",
              t.settings, t.max_prob_diff, t.max_logit_rel_diff);
}

TEST(SamplingHf, ProcessorPartsMatchHf) {
  Totals t;
  check_file("stories260K_processors.json", t);
  EXPECT_EQ(t.settings, 21);
  std::printf("[hf processors] %d settings, max |prob diff| %.3g, max rel logit diff %.3g\n",
              t.settings, t.max_prob_diff, t.max_logit_rel_diff);
}

TEST(SamplingHf, GreedyPicksHfTokensAndLogSoftmaxMatchesHfLogsumexp) {
  const json doc = load("stories260K_greedy.json");
  const std::vector<int32_t> want = doc.at("new_tokens").get<std::vector<int32_t>>();
  const json& steps = doc.at("step_logits");
  const json& tops = doc.at("step_logits_top");
  ASSERT_EQ(steps.size(), want.size());
  std::vector<int32_t> ids = doc.at("prompt").get<std::vector<int32_t>>();
  const int64_t prompt_len = static_cast<int64_t>(ids.size());
  GenerationConfig g;  // HF defaults: greedy, no processors
  g.eos_token_ids = doc.at("eos_token_id").get<std::vector<int32_t>>();
  const ProcessorChain chain = build_chain(g);
  double max_diff = 0.0;
  for (size_t s = 0; s < want.size(); ++s) {
    std::vector<float> row = steps[s].get<std::vector<float>>();
    chain.apply(row, make_view(ids, prompt_len));
    EXPECT_EQ(greedy(row), want[s]) << "step " << s;
    // log p(id) = logit - logsumexp, HF's logsumexp recorded for the top ids.
    const std::vector<float> lp = log_softmax(row);
    const double lse = tops[s].at("logsumexp").get<double>();
    const std::vector<int32_t> top_ids = tops[s].at("top_ids").get<std::vector<int32_t>>();
    const std::vector<double> top_logits = tops[s].at("top_logits").get<std::vector<double>>();
    for (size_t k = 0; k < top_ids.size(); ++k) {
      const double d = std::fabs(lp[top_ids[k]] - (top_logits[k] - lse));
      max_diff = std::max(max_diff, d);
      EXPECT_LE(d, 1e-5) << "step " << s << " id " << top_ids[k];
    }
    ids.push_back(want[s]);
  }
  std::printf("[hf greedy] %zu steps, max |log_softmax - (logit - HF logsumexp)| %.3g\n",
              want.size(), max_diff);
}
