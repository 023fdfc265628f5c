// Processors on hand-made logits, expected values worked out by hand in the
// comments; min_p (absent from HF 4.40) and the llama.cpp order live here.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sampling/generation_config.h"
#include "sampling/math.h"
#include "sampling/processors.h"
#include "sampling/trace.h"
#include "util/error.h"

using namespace nucleus::sampling;

namespace {

constexpr float NEG = -INFINITY;

std::vector<float> ln(std::vector<double> p) {
  std::vector<float> out;
  for (double v : p) out.push_back(v > 0 ? static_cast<float>(std::log(v)) : NEG);
  return out;
}

std::vector<int> kept(const std::vector<float>& row) {
  std::vector<int> k;
  for (size_t i = 0; i < row.size(); ++i)
    if (row[i] != NEG) k.push_back(static_cast<int>(i));
  return k;
}

void run(const LogitsProcessor& p, std::vector<float>& row, const std::vector<int32_t>& ids,
         int64_t prompt_len) {
  p.apply(row, make_view(ids, prompt_len));
}

const std::vector<int32_t> kNoIds;

}  // namespace

TEST(SamplingMinP, RemovesBelowFractionOfMax) {
  // p = .5 .3 .15 .05, min_p 0.2 -> threshold 0.2 * 0.5 = 0.1: only id 3 (0.05) goes.
  std::vector<float> row = ln({0.5, 0.3, 0.15, 0.05});
  run(*make_min_p(0.2, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 2}));
  // min_p 1 keeps only the maximum; min_keep 2 keeps the best two anyway.
  row = ln({0.5, 0.3, 0.15, 0.05});
  run(*make_min_p(1.0, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{0}));
  row = ln({0.5, 0.3, 0.15, 0.05});
  run(*make_min_p(1.0, 2), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1}));
}

TEST(SamplingMinP, HfOrderAppliesAfterTemperatureLlamaOrderBefore) {
  // p = .5 .3 .15 .05, temperature 2, min_p 0.5.
  // HF order (temperature first): probabilities become proportional to sqrt(p):
  //   .70711 .54772 .38730 .22361, sum 1.86574 -> .37899 .29357 .20758 .11985;
  //   threshold 0.5 * .37899 = .18950 -> ids 0, 1, 2 stay.
  // llama.cpp order (min_p on the raw p, temperature last): threshold .25 ->
  //   ids 0, 1 stay; then sqrt weighting: .70711 / (.70711 + .54772) = .56351.
  GenerationConfig g;
  g.do_sample = true;
  g.top_k = 0;
  g.temperature = 2.0;
  g.min_p = 0.5;
  std::vector<float> row = ln({0.5, 0.3, 0.15, 0.05});
  const ProcessorChain hf = build_chain(g);
  EXPECT_EQ(hf.names(), (std::vector<std::string>{"temperature", "min_p"}));
  hf.apply(row, make_view(kNoIds, 0));
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 2}));
  std::vector<float> p = softmax(row);
  EXPECT_NEAR(p[0], 0.70711 / (0.70711 + 0.54772 + 0.38730), 1e-5);

  g.sampler_order = "llama.cpp";
  row = ln({0.5, 0.3, 0.15, 0.05});
  const ProcessorChain ll = build_chain(g);
  EXPECT_EQ(ll.names(), (std::vector<std::string>{"min_p", "temperature"}));
  ll.apply(row, make_view(kNoIds, 0));
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1}));
  p = softmax(row);
  EXPECT_NEAR(p[0], 0.56351, 1e-5);
  EXPECT_NEAR(p[1], 0.43649, 1e-5);
}

TEST(SamplingLlamaCpp, ChainOrder) {
  GenerationConfig g;
  g.do_sample = true;
  g.sampler_order = "llama.cpp";
  g.repetition_penalty = 1.1;
  g.top_k = 40;
  g.typical_p = 0.9;
  g.top_p = 0.95;
  g.min_p = 0.05;
  g.temperature = 0.8;
  const ProcessorChain c = build_chain(g);
  EXPECT_EQ(c.names(), (std::vector<std::string>{"penalties", "top_k", "typical_p", "top_p",
                                                 "min_p", "temperature"}));
  EXPECT_EQ(
      c.describe(),
      "penalties(last_n=64, repeat=1.1, frequency=0, presence=0) -> top_k(k=40, min_keep=1) -> "
      "typical_p(p=0.9, min_keep=1) -> top_p(p=0.95, min_keep=1) -> min_p(p=0.05, min_keep=1) -> "
      "temperature(0.8)");
  g.sampler_order = "hf";
  EXPECT_EQ(build_chain(g).names(),
            (std::vector<std::string>{"repetition_penalty", "temperature", "top_k", "top_p",
                                      "min_p", "typical_p"}));
  // penalty_last_n 0 switches the penalties off in the llama.cpp order.
  g.sampler_order = "llama.cpp";
  g.penalty_last_n = 0;
  EXPECT_EQ(build_chain(g).names().front(), "top_k");
}

TEST(SamplingLlamaCpp, PenaltiesOverWindow) {
  // ids 1 1 2 3, last_n 2 -> window {2, 3}; repeat 2:
  //   id 2: -1 <= 0 -> -1 * 2 = -2; id 3: 4 > 0 -> 4 / 2 = 2; ids 0 and 1 untouched.
  std::vector<float> row = {5.0f, 4.0f, -1.0f, 4.0f};
  run(*make_llama_penalties(2, 2.0, 0.0, 0.0), row, {1, 1, 2, 3}, 4);
  EXPECT_EQ(row, (std::vector<float>{5.0f, 4.0f, -2.0f, 2.0f}));
  // last_n -1: the whole sequence, so id 1 is penalised too: 4 / 2 = 2.
  row = {5.0f, 4.0f, -1.0f, 4.0f};
  run(*make_llama_penalties(-1, 2.0, 0.0, 0.0), row, {1, 1, 2, 3}, 4);
  EXPECT_EQ(row, (std::vector<float>{5.0f, 2.0f, -2.0f, 2.0f}));
  // Frequency/presence: id 3 seen twice, logit 1 -> 1 - (2 * 0.5 + 0.25) = -0.25.
  row = {0.0f, 0.0f, 0.0f, 1.0f};
  run(*make_llama_penalties(64, 1.0, 0.5, 0.25), row, {3, 3}, 2);
  EXPECT_EQ(row, (std::vector<float>{0.0f, 0.0f, 0.0f, -0.25f}));
}

TEST(SamplingProcessors, RepetitionPenaltyHf) {
  // ids 0 1 0, penalty 2: id 0 (2 > 0) -> 1, once although it occurs twice; id 1 (-2) -> -4.
  std::vector<float> row = {2.0f, -2.0f, 1.0f, 3.0f};
  run(*make_repetition_penalty(2.0), row, {0, 1, 0}, 3);
  EXPECT_EQ(row, (std::vector<float>{1.0f, -4.0f, 1.0f, 3.0f}));
}

TEST(SamplingProcessors, NoRepeatNGram) {
  // n 2, ids 5 6 5: last 1 token is 5; bigram (5, 6) exists -> 6 banned.
  std::vector<float> row(8, 0.0f);
  run(*make_no_repeat_ngram(2), row, {5, 6, 5}, 1);
  EXPECT_EQ(row[6], NEG);
  EXPECT_EQ(kept(row).size(), 7u);
  // n 3, ids 1 2 3 1 2: prefix (1, 2) was followed by 3 -> 3 banned.
  row.assign(8, 0.0f);
  run(*make_no_repeat_ngram(3), row, {1, 2, 3, 1, 2}, 5);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 2, 4, 5, 6, 7}));
  // Too short for any n-gram (length + 1 < n): nothing banned.
  row.assign(8, 0.0f);
  run(*make_no_repeat_ngram(3), row, {1}, 1);
  EXPECT_EQ(kept(row).size(), 8u);
  // n 1 bans every id seen.
  row.assign(8, 0.0f);
  run(*make_no_repeat_ngram(1), row, {4, 2}, 2);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 3, 5, 6, 7}));
}

TEST(SamplingProcessors, BadWordsSingleAndMulti) {
  // [4] always banned; [1, 2] bans 2 only right after 1; [2] alone is an EOS
  // id and HF drops it; [7, 1, 2] is longer than a 1-id sequence and skipped.
  const auto p = make_bad_words({{4}, {1, 2}, {2}, {7, 1, 2}}, {2});
  std::vector<float> row(8, 0.0f);
  run(*p, row, {3, 1}, 1);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 3, 5, 6, 7}));
  row.assign(8, 0.0f);
  run(*p, row, {1, 3}, 1);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 2, 3, 5, 6, 7}));
  row.assign(8, 0.0f);
  // HF skips every sequence longer than the whole current sequence, so with the
  // single id 1 even [1, 2] (whose prefix would fit) does not apply: only 4 goes.
  run(*p, row, {1}, 1);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 2, 3, 5, 6, 7}));
  row.assign(8, 0.0f);
  run(*p, row, {7, 1}, 1);  // now [7, 1, 2] matches as well
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 3, 5, 6, 7}));
}

TEST(SamplingProcessors, SequenceBias) {
  // +1.5 on id 3 always; -2 on id 5 right after id 0.
  const auto p = make_sequence_bias({{{3}, 1.5}, {{0, 5}, -2.0}});
  std::vector<float> row(6, 1.0f);
  run(*p, row, {4, 0}, 1);
  EXPECT_EQ(row, (std::vector<float>{1.0f, 1.0f, 1.0f, 2.5f, 1.0f, -1.0f}));
  row.assign(6, 1.0f);
  run(*p, row, {0, 4}, 1);
  EXPECT_EQ(row, (std::vector<float>{1.0f, 1.0f, 1.0f, 2.5f, 1.0f, 1.0f}));
  row.assign(4, 1.0f);  // id 5 outside a 4-token vocabulary
  EXPECT_THROW(run(*p, row, {0}, 1), nucleus::Error);
}

TEST(SamplingProcessors, MinLengthMinNewTokensForcedEosSuppress) {
  std::vector<float> row(5, 1.0f);
  // min_new_tokens 2 with EOS {2, 3}: masked at generated 0 and 1, not at 2.
  const auto mn = make_min_new_tokens(2, {2, 3});
  run(*mn, row, {1, 4}, 2);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 4}));
  row.assign(5, 1.0f);
  run(*mn, row, {1, 4, 0}, 2);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 4}));
  row.assign(5, 1.0f);
  run(*mn, row, {1, 4, 0, 0}, 2);
  EXPECT_EQ(kept(row).size(), 5u);
  // min_length 3 counts the prompt: length 2 masked, length 3 not.
  const auto ml = make_min_length(3, {2});
  row.assign(5, 1.0f);
  run(*ml, row, {1, 4}, 2);
  EXPECT_EQ(row[2], NEG);
  row.assign(5, 1.0f);
  run(*ml, row, {1, 4, 0}, 2);
  EXPECT_EQ(kept(row).size(), 5u);
  // forced EOS with max_new_tokens 3: at generated 2 only EOS is left, with logit 0.
  const auto fe = make_forced_eos(3, {2});
  row.assign(5, 1.0f);
  run(*fe, row, {1, 0}, 1);
  EXPECT_EQ(kept(row).size(), 5u);
  run(*fe, row, {1, 0, 0}, 1);
  EXPECT_EQ(row, (std::vector<float>{NEG, NEG, 0.0f, NEG, NEG}));
  // suppress_tokens.
  row.assign(5, 1.0f);
  run(*make_suppress_tokens({0, 3}), row, {1}, 1);
  EXPECT_EQ(kept(row), (std::vector<int>{1, 2, 4}));
  EXPECT_THROW(run(*make_suppress_tokens({5}), row, {1}, 1), nucleus::Error);
}

TEST(SamplingProcessors, TopKKeepsTiesAndMinKeep) {
  // k 2 on 1 3 3 2 3: the 2nd largest is 3, so every 3 stays (ids 1, 2, 4).
  std::vector<float> row = {1.0f, 3.0f, 3.0f, 2.0f, 3.0f};
  run(*make_top_k(2, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{1, 2, 4}));
  // k 1 under beams (min_keep 2) keeps two.
  row = {1.0f, 4.0f, 3.0f, 2.0f};
  run(*make_top_k(1, 2), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{1, 2}));
}

TEST(SamplingProcessors, TopPAndMinKeep) {
  // p .1 .2 .3 .4, top_p 0.3: ascending cumsum .1 .3 .6 1.0; remove cum <= 1 - 0.3 = 0.7
  // -> ids 0 1 2 go, id 3 (0.4 >= 0.3) stays; with min_keep 2 ids 2 and 3 stay.
  std::vector<float> row = ln({0.1, 0.2, 0.3, 0.4});
  run(*make_top_p(0.3, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{3}));
  row = ln({0.1, 0.2, 0.3, 0.4});
  run(*make_top_p(0.3, 2), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{2, 3}));
  // Beam search gives the warpers min_keep 2.
  GenerationConfig g;
  g.do_sample = true;
  g.num_beams = 2;
  g.top_k = 0;
  g.top_p = 0.3;
  row = ln({0.1, 0.2, 0.3, 0.4});
  build_chain(g).apply(row, make_view(kNoIds, 0));
  EXPECT_EQ(kept(row), (std::vector<int>{2, 3}));
}

TEST(SamplingChain, HfOrderOfEverything) {
  GenerationConfig g;
  g.do_sample = true;
  g.eos_token_ids = {2};
  g.sequence_bias = {{{3}, 1.0}};
  g.repetition_penalty = 1.2;
  g.no_repeat_ngram_size = 3;
  g.bad_words_ids = {{5}};
  g.min_length = 2;
  g.min_new_tokens = 1;
  g.max_new_tokens = 10;
  g.forced_eos_token_ids = {2};
  g.suppress_tokens = {7};
  g.temperature = 0.7;
  g.top_k = 10;
  g.top_p = 0.9;
  g.min_p = 0.05;
  g.typical_p = 0.95;
  g.epsilon_cutoff = 1e-4;
  g.eta_cutoff = 1e-3;
  const std::vector<std::string> processors = {
      "sequence_bias", "repetition_penalty", "no_repeat_ngram", "bad_words",
      "min_length",    "min_new_tokens",     "forced_eos",      "suppress_tokens"};
  std::vector<std::string> all = processors;
  for (const char* w :
       {"temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff"})
    all.push_back(w);
  EXPECT_EQ(build_chain(g).names(), all);
  // Greedy: the processors only, whether by do_sample false or temperature 0.
  g.temperature = 0.0;
  EXPECT_EQ(build_chain(g).names(), processors);
  g.temperature = 0.7;
  g.do_sample = false;
  EXPECT_EQ(build_chain(g).names(), processors);
  // Defaults: greedy with no processors; sampling adds HF's default top_k 50.
  EXPECT_EQ(build_chain(GenerationConfig{}).describe(), "(empty)");
  GenerationConfig s;
  s.do_sample = true;
  EXPECT_EQ(build_chain(s).describe(), "top_k(k=50, min_keep=1)");
}

TEST(SamplingChain, TraceRecordsEveryProcessor) {
  // p .5 .3 .2; temperature 0.5 squares the weights: .25 .09 .04 / .38 =
  // .65789 .23684 .10526; top_k 2 leaves .25 .09 / .34 = .73529 .26471.
  ProcessorChain c;
  c.add(make_temperature(0.5));
  c.add(make_top_k(2, 1));
  std::vector<float> row = ln({0.5, 0.3, 0.2});
  SamplingTrace trace;
  trace.top_n = 2;
  const std::vector<int32_t> ids = {1, 0};
  c.apply(row, make_view(ids, 1), &trace);
  ASSERT_EQ(trace.steps.size(), 1u);
  const StepTrace& st = trace.steps[0];
  EXPECT_EQ(st.step, 1);
  ASSERT_EQ(st.records.size(), 3u);
  EXPECT_EQ(st.records[0].name, "input");
  EXPECT_EQ(st.records[0].survivors, 3);
  EXPECT_NEAR(st.records[0].top[0].prob, 0.5, 1e-6);
  EXPECT_EQ(st.records[1].name, "temperature");
  ASSERT_EQ(st.records[1].top.size(), 2u);
  EXPECT_EQ(st.records[1].top[0].id, 0);
  EXPECT_NEAR(st.records[1].top[0].prob, 0.65789, 1e-5);
  EXPECT_NEAR(st.records[1].top[1].prob, 0.23684, 1e-5);
  EXPECT_EQ(st.records[2].name, "top_k");
  EXPECT_EQ(st.records[2].survivors, 2);
  EXPECT_NEAR(st.records[2].top[0].prob, 0.73529, 1e-5);
  EXPECT_NEAR(st.records[2].top[1].prob, 0.26471, 1e-5);
  const nlohmann::json j = to_json(trace);
  EXPECT_EQ(j["steps"][0]["records"][2]["survivors"], 2);
  EXPECT_EQ(j["steps"][0]["records"][2]["top"][1]["id"], 1);
  EXPECT_EQ(format_step(st),
            "step 1: input 3 [0 0.500, 1 0.300] | temperature 3 [0 0.658, 1 0.237] | top_k 2 [0 "
            "0.735, 1 0.265]");
}

TEST(SamplingChain, BadSequenceIdsAreErrors) {
  std::vector<float> row(4, 0.0f);
  EXPECT_THROW(run(*make_repetition_penalty(1.5), row, {1, 9}, 1), nucleus::Error);
  EXPECT_THROW(make_view(std::vector<int32_t>{1}, 2), nucleus::Error);
}

TEST(SamplingProcessors, TopPBoundaryAndTies) {
  // Four equal logits: probabilities exactly 0.25 each (exp(0) = 1, 1/4 exact).
  // top_p 0.5: ascending cumsum 0.25 0.5 0.75 1.0, remove cum <= 0.5 (<=, not <)
  // -> two go. The stable ascending sort puts lower ids first among ties, so
  // ids 0 and 1 go and ids 2 and 3 stay.
  std::vector<float> row(4, 0.0f);
  run(*make_top_p(0.5, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{2, 3}));
  // top_p 1 keeps everything (threshold 0, no cumsum is <= 0 with positive mass).
  row.assign(4, 0.0f);
  run(*make_top_p(1.0, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row).size(), 4u);
}

TEST(SamplingProcessors, TypicalEpsilonEtaByHand) {
  // Typical on a uniform row: every token is equally typical (shifted score 0
  // for all), so nothing is strictly above the limit and all 4 stay.
  std::vector<float> row(4, 1.0f);
  run(*make_typical_p(0.5, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row).size(), 4u);
  // Epsilon 0.2 on p = .6 .3 .1: 0.1 < 0.2 goes. Epsilon 0.9: all below, but
  // min_keep 1 keeps the best.
  row = ln({0.6, 0.3, 0.1});
  run(*make_epsilon_cutoff(0.2, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1}));
  row = ln({0.6, 0.3, 0.1});
  run(*make_epsilon_cutoff(0.9, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{0}));
  // Eta on p = .4 .3 .2 .1: entropy H = .4*.916291 + .3*1.203973 + .2*1.609438
  // + .1*2.302585 = 1.279855, exp(-H) = .278066. eps .25: sqrt(.25) * .278066 =
  // .139033 < .25, so eta = .139033: only 0.1 goes (with eta = eps, 0.2 would too).
  row = ln({0.4, 0.3, 0.2, 0.1});
  run(*make_eta_cutoff(0.25, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1, 2}));
  // eps .04 on p = .9 .05 .03 .02: H = .428049, sqrt(.04) * exp(-H) = .2 * .65182
  // = .130364 > .04, so eta = .04: .03 and .02 go.
  row = ln({0.9, 0.05, 0.03, 0.02});
  run(*make_eta_cutoff(0.04, 1), row, kNoIds, 0);
  EXPECT_EQ(kept(row), (std::vector<int>{0, 1}));
}

TEST(SamplingProcessors, TopPLargeRowEqualsPlainDefinition) {
  // Rows above 4096 survivors take the partial-sort path; it must remove
  // exactly what the plain definition (stable ascending sort of everything,
  // cumsum in double, remove <= 1 - p, keep the last min_keep) removes. Peaked
  // rows take the shortcut, flat rows fall back to larger sorts.
  auto plain = [](std::vector<float> row, double p, size_t min_keep) {
    const std::vector<float> probs = softmax(row);
    std::vector<int> order(row.size());
    for (size_t i = 0; i < row.size(); ++i) order[i] = static_cast<int>(i);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] < row[b]; });
    double acc = 0.0;
    const float thr = static_cast<float>(1.0 - p);
    for (size_t i = 0; i + min_keep < order.size(); ++i) {
      acc += probs[order[i]];
      if (static_cast<float>(acc) <= thr) row[order[i]] = NEG;
    }
    return row;
  };
  uint64_t state = 12345;
  auto next = [&] {  // small LCG: the test only needs varied, repeatable rows
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  };
  for (double spread : {0.5, 2.0, 6.0, 12.0}) {
    for (double p : {0.5, 0.9, 0.99}) {
      std::vector<float> row(20000);
      for (float& v : row) v = static_cast<float>(spread * std::pow(next(), 3.0) * 4.0);
      for (int i = 0; i < 50; ++i) row[static_cast<size_t>(next() * 20000)] = NEG;
      row[7] = row[8];  // a tie
      for (size_t keep : {1u, 2u}) {
        std::vector<float> ours = row;
        run(*make_top_p(p, static_cast<int64_t>(keep)), ours, kNoIds, 0);
        EXPECT_EQ(kept(ours), kept(plain(row, p, keep))) << "spread " << spread << " p " << p;
      }
    }
  }
}
