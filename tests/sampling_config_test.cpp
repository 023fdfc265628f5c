// GenerationConfig::validate: every bad setting throws nucleus::Error naming the parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <string>

#include "sampling/generation_config.h"
#include "util/error.h"

using namespace nucleus::sampling;

namespace {

std::string error_of(const GenerationConfig& g) {
  try {
    g.validate();
  } catch (const nucleus::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SamplingConfig, DefaultsAreHfDefaultsAndValid) {
  GenerationConfig g;
  EXPECT_FALSE(g.do_sample);
  EXPECT_EQ(g.temperature, 1.0);
  EXPECT_EQ(g.top_k, 50);
  EXPECT_EQ(g.top_p, 1.0);
  EXPECT_EQ(g.typical_p, 1.0);
  EXPECT_EQ(g.repetition_penalty, 1.0);
  EXPECT_EQ(g.num_beams, 1);
  EXPECT_EQ(g.num_return_sequences, 1);
  EXPECT_EQ(g.length_penalty, 1.0);
  EXPECT_EQ(g.early_stopping, EarlyStopping::False);
  EXPECT_EQ(g.sampler_order, "hf");
  EXPECT_EQ(g.penalty_last_n, 64);
  EXPECT_NO_THROW(g.validate());
  g.temperature = 0.0;  // greedy
  g.do_sample = true;
  EXPECT_NO_THROW(g.validate());
  EXPECT_FALSE(g.sampling());
}

TEST(SamplingConfig, EachBadSettingNamesItsParameter) {
  struct Case {
    const char* param;
    std::function<void(GenerationConfig&)> set;
  };
  const Case cases[] = {
      {"temperature", [](GenerationConfig& g) { g.temperature = -0.1; }},
      {"temperature", [](GenerationConfig& g) { g.temperature = NAN; }},
      {"top_k", [](GenerationConfig& g) { g.top_k = -1; }},
      {"top_p", [](GenerationConfig& g) { g.top_p = 0.0; }},
      {"top_p", [](GenerationConfig& g) { g.top_p = 1.5; }},
      {"min_p", [](GenerationConfig& g) { g.min_p = -0.1; }},
      {"min_p", [](GenerationConfig& g) { g.min_p = 1.1; }},
      {"typical_p", [](GenerationConfig& g) { g.typical_p = 0.0; }},
      {"typical_p", [](GenerationConfig& g) { g.typical_p = 1.2; }},
      {"epsilon_cutoff", [](GenerationConfig& g) { g.epsilon_cutoff = 1.0; }},
      {"epsilon_cutoff", [](GenerationConfig& g) { g.epsilon_cutoff = -1e-3; }},
      {"eta_cutoff", [](GenerationConfig& g) { g.eta_cutoff = 1.0; }},
      {"repetition_penalty", [](GenerationConfig& g) { g.repetition_penalty = 0.0; }},
      {"repetition_penalty", [](GenerationConfig& g) { g.repetition_penalty = -1.0; }},
      {"frequency_penalty", [](GenerationConfig& g) { g.frequency_penalty = INFINITY; }},
      {"no_repeat_ngram_size", [](GenerationConfig& g) { g.no_repeat_ngram_size = -2; }},
      {"bad_words_ids", [](GenerationConfig& g) { g.bad_words_ids = {{}}; }},
      {"bad_words_ids",
       [](GenerationConfig& g) {
         g.bad_words_ids = {{3, -1}};
       }},
      {"sequence_bias",
       [](GenerationConfig& g) {
         g.sequence_bias = {{{}, 1.0}};
       }},
      {"min_length", [](GenerationConfig& g) { g.min_length = -1; }},
      {"min_new_tokens", [](GenerationConfig& g) { g.min_new_tokens = -1; }},
      {"min_new_tokens",
       [](GenerationConfig& g) {
         g.max_new_tokens = 4;
         g.min_new_tokens = 5;
       }},
      {"max_new_tokens", [](GenerationConfig& g) { g.max_new_tokens = 0; }},
      {"suppress_tokens", [](GenerationConfig& g) { g.suppress_tokens = {-3}; }},
      {"eos_token_id",
       [](GenerationConfig& g) {
         g.eos_token_ids = {2, -1};
       }},
      {"forced_eos_token_id",
       [](GenerationConfig& g) { g.forced_eos_token_ids = {2}; }},  // no max_new_tokens
      {"max_time", [](GenerationConfig& g) { g.max_time = -1.0; }},
      {"stop_strings", [](GenerationConfig& g) { g.stop_strings = {""}; }},
      {"num_beams", [](GenerationConfig& g) { g.num_beams = 0; }},
      {"num_return_sequences", [](GenerationConfig& g) { g.num_return_sequences = 0; }},
      {"num_return_sequences",
       [](GenerationConfig& g) {
         g.num_beams = 2;
         g.num_return_sequences = 3;
       }},
      {"num_return_sequences", [](GenerationConfig& g) { g.num_return_sequences = 2; }},  // greedy
      {"length_penalty", [](GenerationConfig& g) { g.length_penalty = NAN; }},
      {"sampler_order", [](GenerationConfig& g) { g.sampler_order = "mirostat"; }},
      {"penalty_last_n", [](GenerationConfig& g) { g.penalty_last_n = -2; }},
  };
  for (const Case& c : cases) {
    GenerationConfig g;
    c.set(g);
    const std::string msg = error_of(g);
    EXPECT_NE(msg.find(std::string(c.param) + "="), std::string::npos)
        << c.param << ": got \"" << msg << "\"";
    EXPECT_THROW(build_chain(g), nucleus::Error) << c.param;
  }
  // The message carries the value and the allowed range.
  GenerationConfig g;
  g.top_p = 1.5;
  EXPECT_EQ(error_of(g), "generation config: top_p=1.5 outside (0, 1]");
}

TEST(SamplingConfig, AcceptedEdgeValues) {
  GenerationConfig g;
  g.do_sample = true;
  g.top_p = 1.0;
  g.min_p = 1.0;
  g.typical_p = 1.0;
  g.top_k = 0;
  g.num_return_sequences = 4;  // sampling allows several
  g.penalty_last_n = -1;
  g.sampler_order = "llama.cpp";
  EXPECT_NO_THROW(g.validate());
  g.num_beams = 4;
  g.do_sample = false;
  EXPECT_NO_THROW(g.validate());
}

TEST(SamplingConfig, EarlyStoppingParse) {
  EXPECT_EQ(parse_early_stopping("true"), EarlyStopping::True);
  EXPECT_EQ(parse_early_stopping("false"), EarlyStopping::False);
  EXPECT_EQ(parse_early_stopping("never"), EarlyStopping::Never);
  EXPECT_STREQ(to_string(EarlyStopping::Never), "never");
  try {
    parse_early_stopping("sometimes");
    FAIL();
  } catch (const nucleus::Error& e) {
    EXPECT_NE(std::string(e.what()).find("early_stopping"), std::string::npos);
  }
}

TEST(SamplingConfig, ReadsHfGenerationConfigJson) {
  std::ifstream in(std::string(NUCLEUS_TEST_DATA) + "/sampling/stories260K_generation_config.json");
  ASSERT_TRUE(in.good());
  GenerationConfig g;
  apply_hf_json(nlohmann::json::parse(in), g, "stories260K_generation_config.json");
  EXPECT_EQ(g.eos_token_ids, (std::vector<int32_t>{2}));  // "eos_token_id": 2
  EXPECT_FALSE(g.do_sample);
  EXPECT_NO_THROW(g.validate());

  // A Llama-3-Instruct-style file: list of EOS ids, sampling defaults.
  const auto j = nlohmann::json::parse(R"({"do_sample": true, "temperature": 0.6, "top_p": 0.9,
      "eos_token_id": [128001, 128009], "early_stopping": "never", "max_new_tokens": 32,
      "bad_words_ids": [[5], [6, 7]], "sequence_bias": [[[9], -1.5]], "stop_strings": "END",
      "transformers_version": "4.40.0", "top_k": null})");
  GenerationConfig h;
  apply_hf_json(j, h, "llama3.json");
  EXPECT_TRUE(h.do_sample);
  EXPECT_EQ(h.temperature, 0.6);
  EXPECT_EQ(h.top_p, 0.9);
  EXPECT_EQ(h.top_k, 50);  // null leaves the default
  EXPECT_EQ(h.eos_token_ids, (std::vector<int32_t>{128001, 128009}));
  EXPECT_EQ(h.early_stopping, EarlyStopping::Never);
  EXPECT_EQ(h.max_new_tokens, 32);
  EXPECT_EQ(h.bad_words_ids, (std::vector<std::vector<int32_t>>{{5}, {6, 7}}));
  ASSERT_EQ(h.sequence_bias.size(), 1u);
  EXPECT_EQ(h.sequence_bias[0].first, (std::vector<int32_t>{9}));
  EXPECT_EQ(h.sequence_bias[0].second, -1.5);
  EXPECT_EQ(h.stop_strings, (std::vector<std::string>{"END"}));

  // to_json writes the same names back: a round trip changes nothing.
  GenerationConfig r;
  apply_hf_json(to_json(h), r, "roundtrip");
  EXPECT_EQ(to_json(r), to_json(h));

  // Object form of sequence_bias, keys "id,id".
  GenerationConfig o;
  apply_hf_json(nlohmann::json::parse(R"({"sequence_bias": {"3,4": 2.0}})"), o, "o.json");
  ASSERT_EQ(o.sequence_bias.size(), 1u);
  EXPECT_EQ(o.sequence_bias[0].first, (std::vector<int32_t>{3, 4}));
}

TEST(SamplingConfig, BadJsonNamesSourceAndField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"top_k": 0.5})", "top_k"},
      {R"({"do_sample": "yes"})", "do_sample"},
      {R"({"eos_token_id": "x"})", "eos_token_id"},
      {R"({"bad_words_ids": [1, 2]})", "bad_words_ids"},
      {R"({"early_stopping": "sometimes"})", "early_stopping"},
      {R"({"sequence_bias": {"a,b": 1}})", "sequence_bias"},
      {R"({"stop_strings": 3})", "stop_strings"},
      {R"([1, 2])", "(top level)"},
  };
  for (const auto& [text, field] : cases) {
    GenerationConfig g;
    try {
      apply_hf_json(nlohmann::json::parse(text), g, "req.json");
      ADD_FAILURE() << text << " did not throw";
    } catch (const nucleus::Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("req.json: field \"" + std::string(field) + "\"", 0), 0u) << msg;
    }
  }
}
