// Beam search against Hugging Face transformers 4.40.2 (tests/data/hf_ref:
// generate(num_beams=4, ...) sequences and sequences_scores on stories260K),
// BeamHypotheses rules checked by hand, and properties every beam search
// result must have, recomputed independently by teacher forcing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "generate/beam_search.h"
#include "generate/generator.h"
#include "generate_test_util.h"
#include "util/error.h"

namespace nucleus {
namespace {

using sampling::EarlyStopping;
using namespace testutil;

const std::vector<int32_t> kOnceUponATime = {1, 403, 407, 261, 378};

GenerateRequest beam_request(const std::vector<int32_t>& prompt, int64_t beams, int64_t ret,
                             int64_t n, EarlyStopping es, double lp = 1.0) {
  GenerateRequest r;
  r.prompt = prompt;
  r.config.num_beams = beams;
  r.config.num_return_sequences = ret;
  r.config.max_new_tokens = n;
  r.config.early_stopping = es;
  r.config.length_penalty = lp;
  return r;
}

// HF's rows hold prompt + generated, then pad; the generated part ends after
// the first EOS (HF writes eos_token_id[0] after a finished hypothesis).
std::vector<int32_t> hf_new_tokens(const nlohmann::json& row, size_t prompt_len,
                                   const std::vector<int32_t>& eos) {
  std::vector<int32_t> out;
  for (size_t i = prompt_len; i < row.size(); ++i) {
    out.push_back(row[i].get<int32_t>());
    if (std::find(eos.begin(), eos.end(), out.back()) != eos.end()) break;
  }
  return out;
}

void expect_matches_hf(const std::string& file) {
  const nlohmann::json ref = load_json("hf_ref/" + file);
  Engine e(bundled_model(), engine_options());
  for (const auto& run : ref["runs"]) {
    const auto& b = run["beam"];
    const auto prompt = run["prompt"].get<std::vector<int32_t>>();
    const auto eos = b["eos_token_id"].get<std::vector<int32_t>>();
    GenerateRequest r =
        beam_request(prompt, b["num_beams"], b["num_return_sequences"], b["max_new_tokens"],
                     b["early_stopping"].get<bool>() ? EarlyStopping::True : EarlyStopping::False,
                     b["length_penalty"]);
    r.config.eos_token_ids = eos;
    const GenerateResult res = generate(e, &bundled_tokenizer(), r);
    SCOPED_TRACE(file + " prompt " + run["prompt_text"].get<std::string>());
    ASSERT_EQ(res.sequences.size(), b["sequences"].size());
    for (size_t i = 0; i < res.sequences.size(); ++i) {
      const auto want = hf_new_tokens(b["sequences"][i], prompt.size(), eos);
      EXPECT_EQ(res.sequences[i].tokens, want) << "sequence " << i;
      EXPECT_EQ(res.sequences[i].tokens,
                b["hypotheses"][i]["new_tokens"].get<std::vector<int32_t>>());
      EXPECT_NEAR(res.sequences[i].score, b["sequences_scores"][i].get<double>(), 1e-4);
      EXPECT_EQ(res.sequences[i].stop_reason,
                b["hypotheses"][i]["ended_with_eos"].get<bool>() ? "eos" : "length");
      // The reference decodes the new tokens alone; after a lone BOS prompt
      // our text drops the first piece's leading space, as SentencePiece
      // does at the start of a text.
      std::string want_text = b["hypotheses"][i]["text"];
      if (prompt.size() == 1 && !want_text.empty() && want_text[0] == ' ') want_text.erase(0, 1);
      EXPECT_EQ(res.sequences[i].text, want_text);
    }
  }
}

TEST(BeamHf, FourBeamsTwoReturnedSixteenTokens) {
  expect_matches_hf("stories260K.json");
}

TEST(BeamHf, EosFinishesBeamsEarly) {
  expect_matches_hf("stories260K_beam_eos426_early_true.json");
}

TEST(BeamHf, NoCacheGivesTheSameBeams) {
  const nlohmann::json ref = load_json("hf_ref/stories260K_beam_eos426_early_true.json");
  const auto& run = ref["runs"][0];
  const auto& b = run["beam"];
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = beam_request(run["prompt"], 4, 3, b["max_new_tokens"], EarlyStopping::True);
  r.config.eos_token_ids = {426};
  r.kv_cache = false;
  const GenerateResult res = generate(e, nullptr, r);
  ASSERT_EQ(res.sequences.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(res.sequences[i].tokens,
              b["hypotheses"][i]["new_tokens"].get<std::vector<int32_t>>());
    EXPECT_NEAR(res.sequences[i].score, b["sequences_scores"][i].get<double>(), 1e-4);
  }
}

// An extra EOS id that never ranks among the candidates changes nothing:
// only the candidate count (3·num_beams instead of 2·num_beams) grows, and
// the walk stops once num_beams beams are chosen. Token 0 (<unk>) has a logit
// near -10 at every step of these runs.
TEST(BeamHf, UnusedExtraEosIdChangesNothing) {
  const nlohmann::json ref = load_json("hf_ref/stories260K_beam_eos426_early_true.json");
  Engine e(bundled_model(), engine_options());
  for (const std::vector<int32_t>& eos : {std::vector<int32_t>{426, 0}, {0, 426}}) {
    const auto& run = ref["runs"][0];
    const auto& b = run["beam"];
    GenerateRequest r = beam_request(run["prompt"], 4, 3, b["max_new_tokens"], EarlyStopping::True);
    r.config.eos_token_ids = eos;
    const GenerateResult res = generate(e, nullptr, r);
    ASSERT_EQ(res.sequences.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      // The EOS that ended the hypothesis (426) is returned, whatever its rank in the list.
      EXPECT_EQ(res.sequences[i].tokens,
                b["hypotheses"][i]["new_tokens"].get<std::vector<int32_t>>());
      EXPECT_NEAR(res.sequences[i].score, b["sequences_scores"][i].get<double>(), 1e-4);
    }
  }
}

// BeamHypotheses by hand (num_beams 2, length_penalty 1, generated_len 1 so
// scores equal the sums).
TEST(BeamHypotheses, KeepsTheBestAndIgnoresRejectedOnes) {
  BeamHypotheses h(2, 1.0, EarlyStopping::False, 10);
  h.add({1}, -1.0, 1, 2);
  EXPECT_EQ(h.size(), 1);
  EXPECT_FALSE(h.is_done(-0.5, 2, 1));  // not full yet
  h.add({2}, -2.0, 1, 2);
  EXPECT_DOUBLE_EQ(h.worst_score(), -2.0);
  h.add({3}, -3.0, 1, 2);  // worse than the worst kept: rejected
  EXPECT_EQ(h.size(), 2);
  EXPECT_DOUBLE_EQ(h.worst_score(), -2.0);  // unchanged by the rejection
  // early_stopping false: done when worst (-2) >= best / (cur_len - prompt)^1.
  EXPECT_TRUE(h.is_done(-2.5, 2, 1));   // -2 >= -2.5
  EXPECT_FALSE(h.is_done(-1.5, 2, 1));  // -2 <  -1.5
  h.add({4}, -1.5, 1, 2);               // replaces -2
  EXPECT_DOUBLE_EQ(h.worst_score(), -1.5);
  const auto s = h.sorted();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].ids, std::vector<int32_t>{1});
  EXPECT_EQ(s[1].ids, std::vector<int32_t>{4});
}

TEST(BeamHypotheses, LengthPenaltyAndStoppingModes) {
  // score = sum / len^lp: -4 over 4 tokens with lp 0.5 is -4 / 2 = -2.
  BeamHypotheses h(1, 0.5, EarlyStopping::Never, 11);
  h.add({7}, -4.0, 4, 2);
  EXPECT_DOUBLE_EQ(h.worst_score(), -2.0);
  // never, lp > 0: best possible is best_sum / (max_length - prompt)^lp =
  // -9 / 10^0.5 = -2.846 < -2 -> done; -4 / sqrt(10) = -1.26 > -2 -> not done.
  EXPECT_TRUE(h.is_done(-9.0, 5, 1));
  EXPECT_FALSE(h.is_done(-4.0, 5, 1));
  // false: uses the current length (4): -4 / 2 = -2 >= ... worst -2 >= -2 -> done.
  BeamHypotheses f(1, 0.5, EarlyStopping::False, 11);
  f.add({7}, -4.0, 4, 2);
  EXPECT_TRUE(f.is_done(-4.0, 5, 1));
  // true: done as soon as num_beams hypotheses exist.
  BeamHypotheses t(1, 0.5, EarlyStopping::True, 11);
  EXPECT_FALSE(t.is_done(-100.0, 5, 1));
  t.add({7}, -4.0, 4, 2);
  EXPECT_TRUE(t.is_done(0.0, 5, 1));
  // Ties: the later-added comes first (HF pops the end of a stable ascending sort).
  BeamHypotheses ties(2, 1.0, EarlyStopping::True, 11);
  ties.add({1}, -1.0, 1, 2);
  ties.add({2}, -1.0, 1, 2);
  EXPECT_EQ(ties.sorted()[0].ids, std::vector<int32_t>{2});
}

// Checks every property a beam result must have; returns the results.
std::vector<SequenceResult> check_properties(Engine& e, const GenerateRequest& r) {
  const GenerateResult res = generate(e, nullptr, r);
  const auto& cfg = r.config;
  EXPECT_EQ(static_cast<int64_t>(res.sequences.size()), cfg.num_return_sequences);
  for (size_t i = 0; i < res.sequences.size(); ++i) {
    const SequenceResult& s = res.sequences[i];
    SCOPED_TRACE("sequence " + std::to_string(i));
    if (i > 0) {
      EXPECT_GE(res.sequences[i - 1].score, s.score);
    }
    if (s.tokens.empty()) {
      ADD_FAILURE() << "no tokens";
      continue;
    }
    EXPECT_LE(static_cast<int64_t>(s.tokens.size()), *cfg.max_new_tokens);
    const auto& eos = cfg.eos_token_ids;
    const bool ends_eos = std::find(eos.begin(), eos.end(), s.tokens.back()) != eos.end();
    EXPECT_EQ(s.stop_reason, ends_eos ? "eos" : "length");
    if (!ends_eos) {
      EXPECT_EQ(static_cast<int64_t>(s.tokens.size()), *cfg.max_new_tokens);
    }
    for (size_t k = 0; k + 1 < s.tokens.size(); ++k)
      EXPECT_TRUE(std::find(eos.begin(), eos.end(), s.tokens[k]) == eos.end());
    // score = (sum of log-probs, the EOS included) / generated_len^length_penalty.
    const double lp = sum(token_logprobs(e, r.prompt, s.tokens));
    const double len = static_cast<double>(s.tokens.size());
    EXPECT_NEAR(s.score, lp / std::pow(len, cfg.length_penalty), 1e-4)
        << "sum " << lp << " len " << len;
  }
  return res.sequences;
}

TEST(BeamProperties, AcrossStoppingModesPenaltiesAndEosSets) {
  Engine e(bundled_model(), engine_options());
  const std::vector<std::vector<int32_t>> prompts = {kOnceUponATime, {1}};
  for (const auto& prompt : prompts) {
    for (EarlyStopping es : {EarlyStopping::True, EarlyStopping::False, EarlyStopping::Never}) {
      for (double lp : {0.5, 1.0, 2.0}) {
        for (const std::vector<int32_t>& eos : {std::vector<int32_t>{426}, {426, 2, 432}}) {
          for (int64_t ret : {1, 4}) {
            SCOPED_TRACE(std::string("early_stopping ") + sampling::to_string(es) + " lp " +
                         std::to_string(lp) + " eos " + std::to_string(eos.size()) + " ret " +
                         std::to_string(ret) + " prompt " + std::to_string(prompt.size()));
            GenerateRequest r = beam_request(prompt, 4, ret, 20, es, lp);
            r.config.eos_token_ids = eos;
            check_properties(e, r);
          }
        }
      }
    }
  }
}

// Searching longer can only improve the kept hypotheses: the three modes run
// the same steps until "true" stops, after which "false" and "never" only
// replace worse hypotheses with better ones, and "never" (length_penalty > 0)
// stops no earlier than "false". So the returned scores are element-wise
// ordered true <= false <= never.
TEST(BeamProperties, LongerSearchNeverLowersScores) {
  Engine e(bundled_model(), engine_options());
  for (double lp : {0.5, 1.0, 2.0}) {
    std::vector<std::vector<SequenceResult>> by_mode;
    for (EarlyStopping es : {EarlyStopping::True, EarlyStopping::False, EarlyStopping::Never}) {
      GenerateRequest r = beam_request(kOnceUponATime, 4, 4, 24, es, lp);
      r.config.eos_token_ids = {426};
      by_mode.push_back(check_properties(e, r));
    }
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_LE(by_mode[0][i].score, by_mode[1][i].score + 1e-6) << "lp " << lp << " i " << i;
      EXPECT_LE(by_mode[1][i].score, by_mode[2][i].score + 1e-6) << "lp " << lp << " i " << i;
    }
  }
}

// With length_penalty 0 a score is the raw log-probability; with EOS
// suppressed for all 16 steps both searches return exactly 16 tokens. Beam
// search keeps 4 prefixes where greedy keeps 1, so on these prompts its best
// sequence is at least as likely (not a theorem for every model, but the
// point of beam search; a failure here would be worth a look).
TEST(BeamProperties, BestBeamAtLeastAsLikelyAsGreedy) {
  Engine e(bundled_model(), engine_options());
  const std::vector<std::vector<int32_t>> prompts = {
      kOnceUponATime, {1}, {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315}};
  for (const auto& prompt : prompts) {
    GenerateRequest g;
    g.prompt = prompt;
    g.config.max_new_tokens = 16;
    g.config.min_new_tokens = 16;
    const GenerateResult greedy = generate(e, nullptr, g);
    GenerateRequest b = beam_request(prompt, 4, 1, 16, EarlyStopping::False, 0.0);
    b.config.min_new_tokens = 16;
    const GenerateResult beam = generate(e, nullptr, b);
    ASSERT_EQ(greedy.sequences[0].tokens.size(), 16u);
    ASSERT_EQ(beam.sequences[0].tokens.size(), 16u);
    const double greedy_lp = sum(token_logprobs(e, prompt, greedy.sequences[0].tokens));
    const double beam_lp = sum(token_logprobs(e, prompt, beam.sequences[0].tokens));
    EXPECT_NEAR(beam.sequences[0].score, beam_lp, 1e-4);
    EXPECT_NEAR(greedy.sequences[0].score, greedy_lp, 1e-4);
    EXPECT_GE(beam_lp, greedy_lp - 1e-6);
  }
}

// Beam sampling: without warpers (temperature 1, top_k 0) the candidate
// scores are plain log-probs, so every property above still holds; the draw
// is a function of the seed.
TEST(BeamSampling, DeterministicPerSeedAndValid) {
  Engine e(bundled_model(), engine_options());
  auto request = [](uint64_t seed) {
    GenerateRequest r = beam_request(kOnceUponATime, 4, 3, 20, EarlyStopping::False);
    r.config.do_sample = true;
    r.config.top_k = 0;
    r.config.seed = seed;
    r.config.eos_token_ids = {426};
    return r;
  };
  const auto a = check_properties(e, request(7));
  const auto b = check_properties(e, request(7));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens);
    EXPECT_EQ(a[i].score, b[i].score);
  }
  // This small model is confident enough that different seeds often end in
  // the same best beams at temperature 1; at temperature 2 they must differ.
  auto hot = [&](uint64_t seed) {
    GenerateRequest r = request(seed);
    r.config.temperature = 2.0;
    return generate(e, nullptr, r).sequences;
  };
  const auto h = hot(7);
  EXPECT_EQ(h[0].tokens, hot(7)[0].tokens);
  bool any_differs = false;
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    const auto c = hot(seed);
    for (size_t i = 0; i < c.size(); ++i) any_differs |= c[i].tokens != h[i].tokens;
  }
  EXPECT_TRUE(any_differs);
  // With warpers (HF 4.40 applies them to the processed log-probs, then adds
  // the beam score) results stay valid and sorted.
  GenerateRequest w = request(11);
  w.config.temperature = 0.7;
  w.config.top_k = 20;
  w.config.top_p = 0.9;
  const GenerateResult res = generate(e, nullptr, w);
  ASSERT_EQ(res.sequences.size(), 3u);
  for (size_t i = 1; i < res.sequences.size(); ++i)
    EXPECT_GE(res.sequences[i - 1].score, res.sequences[i].score);
  for (const auto& s : res.sequences)
    for (int32_t t : s.tokens) EXPECT_TRUE(t >= 0 && t < e.vocab_size());
}

// top_k 3 leaves 3 candidates on the first step (only beam 0 is live there)
// where 8 are drawn: the rest are taken by score, so no error and valid beams.
TEST(BeamSampling, FewerCandidatesThanDrawsStillWorks) {
  Engine e(bundled_model(), engine_options());
  GenerateRequest r = beam_request(kOnceUponATime, 4, 2, 8, EarlyStopping::False);
  r.config.do_sample = true;
  r.config.top_k = 3;
  const GenerateResult res = generate(e, nullptr, r);
  ASSERT_EQ(res.sequences.size(), 2u);
  EXPECT_GE(res.sequences[0].score, res.sequences[1].score);
  EXPECT_GT(res.sequences[1].score, -1e8);  // no beam from the -1e9 placeholders survives
}

// Beams share the prompt's blocks and each other's prefixes: the blocks in
// use never exceed the prompt's full blocks plus, per beam, the blocks that
// lie beyond them. A private copy per beam (beam_full_copy) needs about
// num_beams times the whole sequence, twice over while a step re-copies.
TEST(BeamKv, SharedPrefixesAreNotDuplicated) {
  std::vector<int32_t> prompt = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376,
                                 298, 315, 421, 395, 317, 426, 338, 401, 396, 267};
  while (prompt.size() < 100) prompt.push_back(prompt[prompt.size() % 19 + 1]);
  const int64_t nb = 4, n = 16, bs = 16;
  const int64_t positions =
      static_cast<int64_t>(prompt.size()) + n - 1;  // the last token is never fed
  const int64_t prompt_full = static_cast<int64_t>(prompt.size()) / bs;  // 6
  const int64_t per_beam = (positions + bs - 1) / bs - prompt_full;      // 8 - 6 = 2
  const int64_t bound = prompt_full + nb * per_beam;                     // 14
  GenerateRequest r = beam_request(prompt, nb, 2, n, EarlyStopping::Never);
  r.config.eos_token_ids = {2};
  Engine shared(bundled_model(), engine_options());
  const GenerateResult a = generate(shared, nullptr, r);
  EXPECT_GT(a.kv_peak_blocks, prompt_full);
  EXPECT_LE(a.kv_peak_blocks, bound);
  EXPECT_EQ(shared.kv().memory().blocks_used, 0);  // everything released

  r.beam_full_copy = true;
  Engine copying(bundled_model(), engine_options());
  const GenerateResult b = generate(copying, nullptr, r);
  EXPECT_GT(b.kv_peak_blocks, nb * ((positions + bs - 1) / bs));  // > 32
  EXPECT_EQ(copying.kv().memory().blocks_used, 0);
  ASSERT_EQ(a.sequences.size(), b.sequences.size());
  for (size_t i = 0; i < a.sequences.size(); ++i) {
    EXPECT_EQ(a.sequences[i].tokens, b.sequences[i].tokens);
    EXPECT_EQ(a.sequences[i].score, b.sequences[i].score);
  }
}

TEST(BeamKv, CloneCopiesEveryBlock) {
  KvCache kv({2, 4, 2, 8});
  const int32_t s = kv.create();
  for (int p = 0; p < 3; ++p) {
    kv.append(s);
    for (int l = 0; l < 2; ++l) {
      float k[4], v[4];
      for (int d = 0; d < 4; ++d) {
        k[d] = static_cast<float>(100 * l + 10 * p + d);
        v[d] = -k[d];
      }
      kv.store(s, l, p, k, v);
    }
  }
  const int32_t c = kv.clone(s);
  EXPECT_EQ(kv.length(c), 3);
  EXPECT_EQ(kv.memory().blocks_used, 4);  // 2 blocks each, none shared
  for (int32_t b : kv.blocks(c)) EXPECT_EQ(kv.ref_count(b), 1);
  const float changed[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  kv.store(s, 1, 2, changed, changed);  // the original changes; the clone does not
  for (int p = 0; p < 3; ++p)
    for (int l = 0; l < 2; ++l) {
      float k[4], v[4];
      kv.load(c, l, p, k, v);
      for (int d = 0; d < 4; ++d) {
        EXPECT_EQ(k[d], static_cast<float>(100 * l + 10 * p + d));
        EXPECT_EQ(v[d], -static_cast<float>(100 * l + 10 * p + d));
      }
    }
  kv.release(s);
  kv.release(c);
  EXPECT_EQ(kv.memory().blocks_used, 0);
  const int32_t big = kv.create();
  for (int p = 0; p < 10; ++p) kv.append(big);  // 5 of 8 blocks
  EXPECT_THROW(kv.clone(big), Error);           // only 3 free
}

}  // namespace
}  // namespace nucleus
