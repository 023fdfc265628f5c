// When generation stops, and what text it shows: EOS (the model's default and
// explicit sets), max_new_tokens, stop strings across token boundaries (never
// streamed, not even in part), max_time, min_new_tokens. Expected tokens come
// from Hugging Face transformers 4.40.2's greedy continuation of "<s> Once
// upon a time" (tests/data/hf_ref/stories260K.json runs[0].greedy, 32 tokens):
//   , there was a little girl named Lily. She loved to play outside in ...
// ids 432 383 286 261 376 298 315 421 395 317 426(".") 338(" She") ...
#include <gtest/gtest.h>

#include <algorithm>

#include "generate/generator.h"
#include "generate_test_util.h"
#include "util/error.h"

namespace nucleus {
namespace {

using namespace testutil;

struct Fixture {
  std::vector<int32_t> prompt, greedy;
  std::string greedy_text;
};

const Fixture& ref() {
  static const Fixture f = [] {
    const auto run = load_json("hf_ref/stories260K.json")["runs"][0];
    return Fixture{run["prompt"].get<std::vector<int32_t>>(),
                   run["greedy"]["new_tokens"].get<std::vector<int32_t>>(),
                   run["greedy"]["text"].get<std::string>()};
  }();
  return f;
}

std::vector<int32_t> hf_prefix(size_t n) {
  return {ref().greedy.begin(), ref().greedy.begin() + static_cast<long>(n)};
}

GenerateRequest greedy_request(int64_t n) {
  GenerateRequest r;
  r.prompt = ref().prompt;
  r.config.max_new_tokens = n;
  return r;
}

struct Streamed {
  GenerateResult result;
  std::vector<std::string> chunks;  // sequence 0's
  std::string joined;
};

Streamed run(Engine& e, const GenerateRequest& r) {
  Streamed s;
  s.result = generate(e, &bundled_tokenizer(), r, [&](int64_t index, const std::string& text) {
    if (index != 0) return;
    s.chunks.push_back(text);
    s.joined += text;
  });
  return s;
}

TEST(Stopping, MaxNewTokensGivesHfGreedyPrefix) {
  Engine e(bundled_model(), engine_options());
  const Streamed s = run(e, greedy_request(32));
  ASSERT_EQ(s.result.sequences.size(), 1u);
  EXPECT_EQ(s.result.sequences[0].tokens, ref().greedy);
  EXPECT_EQ(s.result.sequences[0].stop_reason, "length");
  EXPECT_EQ(s.result.sequences[0].text, ref().greedy_text);
  EXPECT_EQ(s.joined, s.result.sequences[0].text);
  const Streamed five = run(e, greedy_request(5));
  EXPECT_EQ(five.result.sequences[0].tokens, hf_prefix(5));
}

TEST(Stopping, ExplicitEosIdsStopAtTheFirstOneAndKeepIt) {
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = greedy_request(32);
  r.config.eos_token_ids = {426};  // "."
  Streamed s = run(e, r);
  EXPECT_EQ(s.result.sequences[0].tokens, hf_prefix(11));  // up to and including "."
  EXPECT_EQ(s.result.sequences[0].stop_reason, "eos");
  EXPECT_EQ(s.result.sequences[0].text, ", there was a little girl named Lily.");
  // Several ids: the first of any of them (338 " She" comes after 426).
  r.config.eos_token_ids = {338, 426, 2};
  s = run(e, r);
  EXPECT_EQ(s.result.sequences[0].tokens, hf_prefix(11));
  r.config.eos_token_ids = {338, 2};
  s = run(e, r);
  EXPECT_EQ(s.result.sequences[0].tokens, hf_prefix(12));
}

// Nothing configured: the model's EOS (id 2 in stories260K) applies. A +100
// bias on id 2 makes it the greedy choice at the first step.
TEST(Stopping, ModelDefaultEos) {
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = greedy_request(16);
  r.config.sequence_bias = {{{2}, 100.0}};
  const Streamed s = run(e, r);
  EXPECT_EQ(s.result.sequences[0].tokens, std::vector<int32_t>{2});
  EXPECT_EQ(s.result.sequences[0].stop_reason, "eos");
  EXPECT_EQ(s.result.sequences[0].text, "");
}

// min_new_tokens masks every EOS id until that many tokens exist: "." (426)
// at position 10 is suppressed; the first 10 tokens are unchanged.
TEST(Stopping, MinNewTokensSuppressesEos) {
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = greedy_request(32);
  r.config.eos_token_ids = {426};
  r.config.min_new_tokens = 12;
  const Streamed s = run(e, r);
  const auto& t = s.result.sequences[0].tokens;
  ASSERT_GE(t.size(), 12u);
  EXPECT_EQ(std::vector<int32_t>(t.begin(), t.begin() + 10), hf_prefix(10));
  EXPECT_EQ(std::count(t.begin(), t.begin() + 12, 426), 0);
  if (s.result.sequences[0].stop_reason == "eos") {
    EXPECT_EQ(t.back(), 426);
  }
}

void expect_stop(Engine& e, const std::string& stop, const std::string& want_text) {
  SCOPED_TRACE("stop \"" + stop + "\"");
  GenerateRequest r = greedy_request(32);
  r.config.stop_strings = {stop};
  const Streamed s = run(e, r);
  const SequenceResult& seq = s.result.sequences[0];
  EXPECT_EQ(seq.stop_reason, "stop");
  EXPECT_EQ(seq.text, want_text);
  EXPECT_EQ(s.joined, want_text);
  // No chunk ever showed a piece of the stop string beyond the final text.
  std::string shown;
  for (const std::string& c : s.chunks) {
    shown += c;
    EXPECT_EQ(want_text.compare(0, shown.size(), shown), 0) << "streamed '" << shown << "'";
  }
  // The token that completed the stop string is the last one generated (HF keeps it).
  const std::string all = detok(seq.tokens, ref().prompt.back());
  EXPECT_NE(all.find(stop), std::string::npos);
  EXPECT_EQ(all.find(stop), want_text.size());
  std::vector<int32_t> shorter(seq.tokens.begin(), seq.tokens.end() - 1);
  EXPECT_EQ(detok(shorter, ref().prompt.back()).find(stop), std::string::npos);
  EXPECT_EQ(seq.tokens, hf_prefix(seq.tokens.size()));
}

TEST(Stopping, StopStrings) {
  Engine e(bundled_model(), engine_options());
  expect_stop(e, "girl", ", there was a little ");
  expect_stop(e, ". She", ", there was a little girl named Lily");  // spans "." and " She"
  expect_stop(e, "ily. S", ", there was a little girl named L");    // spans three tokens
  expect_stop(e, "e was", ", ther");                                // inside one token's text
  // Several strings: the earliest match in the text wins.
  GenerateRequest r = greedy_request(32);
  r.config.stop_strings = {"park", "Lily"};
  Streamed s = run(e, r);
  EXPECT_EQ(s.result.sequences[0].text, ", there was a little girl named ");
  // A prefix of a stop string that never completes is held back only until
  // it cannot match, then shown: the full text comes out.
  r.config.stop_strings = {"Lily. Shx"};
  s = run(e, r);
  EXPECT_EQ(s.result.sequences[0].stop_reason, "length");
  EXPECT_EQ(s.result.sequences[0].text, ref().greedy_text);
  EXPECT_EQ(s.joined, ref().greedy_text);
}

TEST(Stopping, MaxTime) {
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = greedy_request(32);
  r.config.max_time = 0.0;  // over as soon as a token exists
  Streamed s = run(e, r);
  EXPECT_EQ(s.result.sequences[0].stop_reason, "time");
  EXPECT_EQ(s.result.sequences[0].tokens, hf_prefix(1));
  // Beam search honours it too: the running beams come back as they are.
  r.config.num_beams = 2;
  s = run(e, r);
  ASSERT_EQ(s.result.sequences.size(), 1u);
  EXPECT_EQ(s.result.sequences[0].stop_reason, "time");
  EXPECT_EQ(s.result.sequences[0].tokens.size(), 1u);
}

TEST(Stopping, StreamedTextEqualsFinalTextForEverySequence) {
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = greedy_request(40);
  r.config.do_sample = true;
  r.config.num_return_sequences = 4;
  r.config.seed = 3;
  r.config.stop_strings = {"Lily", "."};
  std::vector<std::string> joined(4);
  const GenerateResult res = generate(e, &bundled_tokenizer(), r,
                                      [&](int64_t i, const std::string& t) { joined[i] += t; });
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(joined[i], res.sequences[i].text) << i;
    EXPECT_EQ(res.sequences[i].text.find("Lily"), std::string::npos);
    EXPECT_EQ(res.sequences[i].text.find('.'), std::string::npos);
  }
}

TEST(Stopping, StopStringsNeedATokenizerAndAreNotForBeams) {
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = greedy_request(4);
  r.config.stop_strings = {"x"};
  EXPECT_THROW(generate(e, nullptr, r), Error);
  r.config.num_beams = 2;
  EXPECT_THROW(generate(e, &bundled_tokenizer(), r), Error);
}

}  // namespace
}  // namespace nucleus
