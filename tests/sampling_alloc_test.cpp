// No heap allocation per generated token: the processor chain with a reused
// ProcessorScratch, the token choice, and the generate() decode loop, counted
// by replacing the global operator new. Reusing scratch must also not change
// a single bit of the result (compared with a fresh scratch per call).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "alloc_counter.h"
#include "generate/generator.h"
#include "generate_test_util.h"
#include "sampling/generation_config.h"
#include "sampling/math.h"
#include "sampling/processor.h"
#include "sampling/select.h"

namespace nucleus {
namespace {

using namespace sampling;

using testutil::allocations;

constexpr int64_t kVocab = 32000;
constexpr int kSteps = 10;

// Logits shaped like a model's: mostly noise around 0 with a few strong
// candidates, so that every filter keeps more than one and removes many.
std::vector<float> random_rows(int n_rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 2.0f);
  std::uniform_int_distribution<int32_t> pick(0, kVocab - 1);
  std::vector<float> rows(static_cast<size_t>(n_rows) * kVocab);
  for (float& v : rows) v = noise(rng);
  for (int r = 0; r < n_rows; ++r)
    for (int j = 0; j < 40; ++j) rows[static_cast<size_t>(r) * kVocab + pick(rng)] += 8.0f;
  return rows;
}

struct ChainRun {
  long allocations = 0;       // during the measured steps
  int64_t min_survivors = 0;  // fewest candidates left after the chain
  int64_t max_survivors = 0;
};

// Warms scratch with one step, then runs kSteps more, each on a new row, with
// the sequence growing by the sampled token. Every processed row is checked
// against the same chain run with a fresh scratch (outside the count).
ChainRun run_chain(const GenerationConfig& cfg, std::vector<int32_t> prompt) {
  const ProcessorChain chain = build_chain(cfg);
  const int64_t prompt_len = static_cast<int64_t>(prompt.size());
  const std::vector<float> rows = random_rows(kSteps + 1, 1234);
  std::vector<int32_t> ids = prompt;
  ids.reserve(ids.size() + kSteps + 1);
  std::vector<float> row(kVocab), probs(kVocab), fresh(kVocab);
  ProcessorScratch scratch;
  ChainRun out;
  out.min_survivors = kVocab;
  for (int step = 0; step <= kSteps; ++step) {
    const float* src = rows.data() + static_cast<size_t>(step) * kVocab;
    const long before = allocations();
    std::copy(src, src + kVocab, row.begin());
    const SequenceView view = make_view(ids, prompt_len);
    chain.apply(row, view, scratch);
    const int32_t tok = sampling::sample(row, probs, cfg.seed, 0, static_cast<uint64_t>(step));
    const long used = allocations() - before;
    if (step > 0) out.allocations += used;  // step 0 warms the scratch

    std::copy(src, src + kVocab, fresh.begin());
    chain.apply(fresh, view);  // fresh scratch
    for (int64_t i = 0; i < kVocab; ++i) {
      // Bitwise: -inf == -inf, and no NaN is expected.
      if (row[i] != fresh[i]) {
        ADD_FAILURE() << "step " << step << " id " << i << ": reused scratch " << row[i]
                      << ", fresh scratch " << fresh[i];
        break;
      }
    }
    const int64_t left = count_survivors(row);
    out.min_survivors = std::min(out.min_survivors, left);
    out.max_survivors = std::max(out.max_survivors, left);
    ids.push_back(tok);
  }
  return out;
}

// A prompt with repeats, so that repetition penalties, n-gram bans and
// bad-word prefixes all find something.
std::vector<int32_t> repetitive_prompt() {
  std::vector<int32_t> p;
  for (int r = 0; r < 30; ++r)
    for (int32_t t : {17, 4242, 31997, 5, 17, 900, 12345}) p.push_back(t + r % 3);
  return p;
}

TEST(SamplingAlloc, HfChainWithEveryProcessorAllocatesNothingOnceWarm) {
  GenerationConfig g;
  g.do_sample = true;
  g.seed = 7;
  g.sequence_bias = {{{100}, 2.0}, {{17, 4242}, -1.5}};
  g.repetition_penalty = 1.3;
  g.no_repeat_ngram_size = 3;
  g.bad_words_ids = {{31997}, {5, 17}, {900, 12345, 7}};
  g.eos_token_ids = {2};
  g.min_length = 1000;
  g.min_new_tokens = 100;
  g.suppress_tokens = {3, 4};
  g.temperature = 0.9;
  g.top_k = 4000;  // above the heap path's 256: the nth_element path
  g.top_p = 0.97;
  g.min_p = 0.001;
  g.typical_p = 0.95;
  g.epsilon_cutoff = 1e-6;
  g.eta_cutoff = 1e-5;
  const ProcessorChain chain = build_chain(g);
  ASSERT_EQ(chain.size(), 14u) << chain.describe();
  const ChainRun r = run_chain(g, repetitive_prompt());
  EXPECT_EQ(r.allocations, 0) << "over " << kSteps << " steps of " << chain.describe();
  // The filters did cut (the test would prove little on a row left whole).
  EXPECT_GT(r.min_survivors, 1);
  EXPECT_LT(r.max_survivors, 4000);
}

TEST(SamplingAlloc, SmallTopKAndCutoffsAllocateNothingOnceWarm) {
  GenerationConfig g;
  g.do_sample = true;
  g.seed = 3;
  g.temperature = 1.4;
  g.top_k = 50;  // the heap path
  g.epsilon_cutoff = 1e-4;
  g.eta_cutoff = 1e-3;
  const ChainRun r = run_chain(g, {1, 2, 3});
  EXPECT_EQ(r.allocations, 0);
  EXPECT_GT(r.min_survivors, 1);
  EXPECT_LE(r.max_survivors, 50);
}

TEST(SamplingAlloc, LlamaOrderWithPenaltiesAllocatesNothingOnceWarm) {
  GenerationConfig g;
  g.do_sample = true;
  g.seed = 11;
  g.sampler_order = "llama.cpp";
  g.penalty_last_n = -1;
  g.repetition_penalty = 1.1;
  g.frequency_penalty = 0.3;
  g.presence_penalty = 0.2;
  g.top_k = 0;
  g.typical_p = 0.9;
  g.top_p = 0.9;
  g.min_p = 0.05;
  g.temperature = 0.8;
  const ChainRun r = run_chain(g, repetitive_prompt());
  EXPECT_EQ(r.allocations, 0);
  EXPECT_GT(r.min_survivors, 1);
  EXPECT_LT(r.max_survivors, kVocab);
}

TEST(SamplingAlloc, GreedyChainAllocatesNothingOnceWarm) {
  GenerationConfig g;
  g.repetition_penalty = 1.2;
  g.no_repeat_ngram_size = 2;
  const ProcessorChain chain = build_chain(g);
  const std::vector<float> rows = random_rows(2, 99);
  std::vector<int32_t> ids = repetitive_prompt();
  std::vector<float> row(rows.begin(), rows.begin() + kVocab);
  ProcessorScratch scratch;
  chain.apply(row, make_view(ids, 3), scratch);
  const long before = allocations();
  std::copy(rows.begin() + kVocab, rows.end(), row.begin());
  chain.apply(row, make_view(ids, 3), scratch);
  const int32_t tok = greedy(row);
  EXPECT_EQ(allocations() - before, 0);
  EXPECT_GE(tok, 0);
}

// ---- the generate() decode loop on the bundled model ----------------------

// Allocations of one whole generate() call. Everything outside the decode
// loop (validation, the chain, prefill, results) costs the same for any
// max_new_tokens, so equal counts for 20 and 40 new tokens mean the 20 extra
// steps allocated nothing. min_new_tokens keeps EOS away, so both runs do
// produce every token. No tokenizer: the streamed text (which grows) is left
// out; the KV block size is above prompt + 40 so that each sequence's block
// table (kv/, grown one block at a time) stays at one block.
long generate_allocations(Engine& e, GenerateRequest req, int64_t new_tokens,
                          const Tokenizer* tokenizer = nullptr) {
  req.config.max_new_tokens = new_tokens;
  req.config.min_new_tokens = new_tokens;
  const long before = allocations();
  const GenerateResult r = generate(e, tokenizer, req);
  const long used = allocations() - before;
  for (const SequenceResult& s : r.sequences)
    EXPECT_EQ(static_cast<int64_t>(s.tokens.size()), new_tokens);
  return used;
}

EngineOptions one_block_options(int64_t block_size = 64) {
  EngineOptions o = testutil::engine_options(1);
  o.kv_block_size = block_size;
  return o;
}

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};

void expect_no_growth(const GenerateRequest& req) {
  Engine e(testutil::bundled_model(), one_block_options());
  generate_allocations(e, req, 40);  // warms the engine's buffers
  const long a20 = generate_allocations(e, req, 20);
  const long a40 = generate_allocations(e, req, 40);
  EXPECT_EQ(a40, a20) << "20 more tokens cost " << (a40 - a20) << " allocations";
}

TEST(GenerateAlloc, GreedyDecodeAllocatesNothingPerToken) {
  GenerateRequest req;
  req.prompt = kPrompt;
  req.config.repetition_penalty = 1.2;
  req.config.no_repeat_ngram_size = 3;
  expect_no_growth(req);
}

TEST(GenerateAlloc, SamplingSeveralSequencesAllocatesNothingPerToken) {
  GenerateRequest req;
  req.prompt = kPrompt;
  req.config.do_sample = true;
  req.config.seed = 5;
  req.config.num_return_sequences = 3;
  req.config.temperature = 1.1;
  req.config.top_k = 40;
  req.config.top_p = 0.95;
  req.config.typical_p = 0.98;
  req.config.repetition_penalty = 1.1;
  expect_no_growth(req);
}

TEST(GenerateAlloc, WithoutKvCacheAllocatesNothingPerToken) {
  GenerateRequest req;
  req.prompt = kPrompt;
  req.kv_cache = false;
  req.config.do_sample = true;
  req.config.seed = 9;
  req.config.min_p = 0.05;
  expect_no_growth(req);
}

TEST(GenerateAlloc, BeamSearchAllocatesNothingPerToken) {
  GenerateRequest req;
  req.prompt = kPrompt;
  req.config.num_beams = 3;
  req.config.num_return_sequences = 2;
  req.config.repetition_penalty = 1.1;
  expect_no_growth(req);
}

TEST(GenerateAlloc, BeamSamplingAllocatesNothingPerToken) {
  GenerateRequest req;
  req.prompt = kPrompt;
  req.config.num_beams = 3;
  req.config.do_sample = true;
  req.config.seed = 4;
  req.config.top_k = 20;
  expect_no_growth(req);
}

// With a tokenizer each sequence also accumulates its text, a string that
// grows geometrically: doubling the token count may reallocate it about once
// per sequence (bounded here by 2), where an allocation per token would cost
// 20 or 40 per sequence. (One KV block of 128 holds prompt + 80.)
TEST(GenerateAlloc, StreamedTextAllocatesOnlyAsItsStringGrows) {
  GenerateRequest req;
  req.prompt = kPrompt;
  req.config.do_sample = true;
  req.config.seed = 8;
  req.config.num_return_sequences = 3;
  req.config.top_p = 0.9;
  Engine e(testutil::bundled_model(), one_block_options(128));
  const Tokenizer* tok = &testutil::bundled_tokenizer();
  generate_allocations(e, req, 80, tok);  // warms the engine
  const long a20 = generate_allocations(e, req, 20, tok);
  const long a40 = generate_allocations(e, req, 40, tok);
  const long a80 = generate_allocations(e, req, 80, tok);
  EXPECT_LE(a40 - a20, 2 * 3) << a20 << " " << a40;
  EXPECT_LE(a80 - a40, 2 * 3) << a40 << " " << a80;
}

}  // namespace
}  // namespace nucleus
