// GenerationConfig::validate: every bad setting throws nucleus::Error naming the parameter.
#include <gtest/gtest.h>

#include <cmath>
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
      {"bad_words_ids", [](GenerationConfig& g) { g.bad_words_ids = {{3, -1}}; }},
      {"sequence_bias", [](GenerationConfig& g) { g.sequence_bias = {{{}, 1.0}}; }},
      {"min_length", [](GenerationConfig& g) { g.min_length = -1; }},
      {"min_new_tokens", [](GenerationConfig& g) { g.min_new_tokens = -1; }},
      {"min_new_tokens",
       [](GenerationConfig& g) {
         g.max_new_tokens = 4;
         g.min_new_tokens = 5;
       }},
      {"max_new_tokens", [](GenerationConfig& g) { g.max_new_tokens = 0; }},
      {"suppress_tokens", [](GenerationConfig& g) { g.suppress_tokens = {-3}; }},
      {"eos_token_id", [](GenerationConfig& g) { g.eos_token_ids = {2, -1}; }},
      {"forced_eos_token_id", [](GenerationConfig& g) { g.forced_eos_token_ids = {2}; }},  // no max_new_tokens
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
    EXPECT_NE(msg.find(std::string(c.param) + "="), std::string::npos) << c.param << ": got \"" << msg << "\"";
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
