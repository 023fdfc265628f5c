// Exact speculative decoding: with either drafter, greedy and seeded sampling
// give the same tokens, the same per-token log-probs and the same stops as
// without speculation; the KV cache holds exactly the accepted positions.
#include <gtest/gtest.h>

#include <unistd.h>

#include <map>

#include <cstdio>
#include <filesystem>

#include "formats/gguf_convert.h"
#include "formats/hf_checkpoint.h"
#include "generate_test_util.h"
#include "serve/scheduler.h"
#include "speculative/drafter.h"
#include "util/error.h"

namespace nucleus {
namespace {

using testutil::bundled_model;
using testutil::bundled_tokenizer;

struct Outcome {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<double> scores;
  std::vector<std::string> texts, reasons;
  std::map<int64_t, std::vector<float>> logprobs;
  SpeculativeStats spec;
};

Outcome run(Engine& e, const GenerateRequest& req, const Tokenizer* tok = &bundled_tokenizer()) {
  serve::SchedulerOptions so;
  so.prefix_cache = false;
  serve::Scheduler sched(e, tok, so);
  Outcome r;
  serve::RequestOptions ro;
  ro.gen = req;
  serve::RequestCallbacks cb;
  cb.on_token = [&r](const serve::TokenEvent& t) { r.logprobs[t.index].push_back(t.logprob); };
  cb.on_done = [&r](GenerateResult&& g) {
    for (const auto& s : g.sequences) {
      r.tokens.push_back(s.tokens);
      r.scores.push_back(s.score);
      r.texts.push_back(s.text);
      r.reasons.push_back(s.stop_reason);
    }
    r.spec = g.speculative;
  };
  cb.on_error = [](const std::string& m) { ADD_FAILURE() << m; };
  sched.add(ro, cb);
  while (!sched.idle()) sched.step();
  EXPECT_EQ(e.kv().memory().blocks_used, 0);
  return r;
}

// Text the output copies from, so that lookup finds matches.
std::vector<int32_t> grounded_prompt() {
  return bundled_tokenizer().encode(
      "Once upon a time, there was a little girl named Lily. She liked to play with her ball. "
      "Once upon a time, there was a little girl named Lily. She liked to play with her",
      true);
}

std::vector<GenerateRequest> settings() {
  std::vector<GenerateRequest> out;
  GenerateRequest base;
  base.prompt = grounded_prompt();
  base.config.max_new_tokens = 48;
  out.push_back(base);  // greedy
  GenerateRequest s = base;
  s.config.do_sample = true;
  s.config.temperature = 0.7;
  s.config.top_p = 0.9;
  s.config.seed = 11;
  out.push_back(s);
  s.config.repetition_penalty = 1.3;
  s.config.top_k = 10;
  s.config.seed = 5;
  out.push_back(s);
  s = base;
  s.config.do_sample = true;
  s.config.temperature = 0.5;
  s.config.num_return_sequences = 3;  // n > 1: a drafter per sequence
  s.config.seed = 3;
  out.push_back(s);
  s = base;
  s.config.stop_strings = {"ball"};  // a stop inside an accepted run
  out.push_back(s);
  s = base;
  s.config.max_new_tokens = 5;  // the length limit inside an accepted run
  out.push_back(s);
  s = base;
  s.config.do_sample = true;
  s.config.sampler_order = "llama.cpp";
  s.config.frequency_penalty = 0.4;
  s.config.min_p = 0.05;
  s.config.seed = 8;
  out.push_back(s);
  return out;
}

void expect_same(const Outcome& plain, const Outcome& spec) {
  EXPECT_EQ(plain.tokens, spec.tokens);
  EXPECT_EQ(plain.scores, spec.scores);
  EXPECT_EQ(plain.texts, spec.texts);
  EXPECT_EQ(plain.reasons, spec.reasons);
  EXPECT_EQ(plain.logprobs, spec.logprobs);  // log-prob for log-prob, bit for bit
}

TEST(Speculative, LookupIsExact) {
  Engine e(bundled_model(), testutil::engine_options(2, 8));
  int64_t accepted = 0;
  for (const GenerateRequest& req : settings()) {
    const Outcome plain = run(e, req);
    GenerateRequest sr = req;
    sr.speculative.mode = SpeculativeOptions::Mode::Lookup;
    sr.speculative.draft_max = 6;
    const Outcome spec = run(e, sr);
    expect_same(plain, spec);
    accepted += spec.spec.accepted;
    EXPECT_EQ(plain.spec.drafted, 0);
  }
  EXPECT_GT(accepted, 0);  // the drafts were used, not just ignored
}

TEST(Speculative, DraftModelIsExact) {
  Engine e(bundled_model(), testutil::engine_options(1, 8));
  // Self-speculation: a Q8_0 copy of the target drafts.
  auto file = std::make_shared<ModelFile>(*testutil::bundled_file());
  quantize_weights(*file, DType::Q8_0);
  Engine draft(std::make_shared<const Model>(file), testutil::engine_options(1, 8));
  int64_t drafted = 0, accepted = 0;
  for (const GenerateRequest& req : settings()) {
    const Outcome plain = run(e, req);
    GenerateRequest sr = req;
    sr.speculative.mode = SpeculativeOptions::Mode::Draft;
    sr.speculative.draft_engine = &draft;
    const Outcome spec = run(e, sr);
    expect_same(plain, spec);
    drafted += spec.spec.drafted;
    accepted += spec.spec.accepted;
  }
  EXPECT_GT(accepted, drafted / 2);  // a close copy: most drafts are right
}

// TinyLlama's proportions scaled down (32000-token vocabulary, 8 query heads
// per KV head, Q4_0 matrices), random weights, written once per run.
std::shared_ptr<const Model> random_tinyllama_like() {
  static const std::shared_ptr<const Model> model = [] {
    const std::string path =
        (std::filesystem::temp_directory_path() /
         ("nucleus_spec_tl_" + std::to_string(::getpid()) + ".gguf"))
            .string();
    GgufConvertOptions o;
    o.type = DType::Q4_0;
    write_random_gguf(parse_random_spec("dim=256,layers=2,heads=8,kv_heads=1,ffn=704,vocab=32000,"
                                        "ctx=512"),
                      path, o, 17, nullptr);
    auto file = std::make_shared<const ModelFile>(load_model_file(path));
    auto m = std::make_shared<const Model>(file);
    std::remove(path.c_str());  // the model keeps what it needs (Q4_0 is repacked)
    return m;
  }();
  return model;
}

TEST(Speculative, ExactOnRandomTinyLlamaShapedModel) {
  Engine e(random_tinyllama_like(), testutil::engine_options(2, 8));
  Engine draft(random_tinyllama_like(), testutil::engine_options(1, 8));
  std::vector<int32_t> prompt = {1};
  for (int r = 0; r < 4; ++r)
    for (int32_t t : {450, 4996, 17354, 1701, 29916, 432, 17204, 975}) prompt.push_back(t);
  int64_t accepted = 0;
  for (GenerateRequest req : settings()) {
    req.prompt = prompt;
    req.config.stop_strings.clear();  // synthetic vocabulary: no text to stop on
    req.config.max_new_tokens = std::min<int64_t>(*req.config.max_new_tokens, 24);
    const Outcome plain = run(e, req, nullptr);
    for (auto mode : {SpeculativeOptions::Mode::Lookup, SpeculativeOptions::Mode::Draft}) {
      GenerateRequest sr = req;
      sr.speculative.mode = mode;
      sr.speculative.draft_engine = &draft;
      const Outcome spec = run(e, sr, nullptr);
      expect_same(plain, spec);
      accepted += spec.spec.accepted;
    }
  }
  EXPECT_GT(accepted, 0);
}

TEST(Speculative, KvHoldsExactlyTheAcceptedPositions) {
  Engine e(bundled_model(), testutil::engine_options(1, 4));
  serve::SchedulerOptions so;
  so.prefix_cache = false;
  serve::Scheduler sched(e, &bundled_tokenizer(), so);
  serve::RequestOptions ro;
  ro.gen.prompt = grounded_prompt();
  ro.gen.config.max_new_tokens = 40;
  ro.gen.speculative.mode = SpeculativeOptions::Mode::Lookup;
  int64_t generated = 0;
  bool done = false;
  SpeculativeStats stats;
  serve::RequestCallbacks cb;
  cb.on_token = [&generated](const serve::TokenEvent&) { ++generated; };
  cb.on_done = [&](GenerateResult&& g) {
    done = true;
    stats = g.speculative;
  };
  sched.add(ro, cb);
  const int64_t bs = e.kv().shape().block_size;
  while (!sched.idle()) {
    sched.step();
    if (done) break;
    // Every id but the newest has its K/V; nothing of a rejected draft stays.
    const int64_t positions = static_cast<int64_t>(ro.gen.prompt.size()) + generated - 1;
    EXPECT_EQ(e.kv().memory().blocks_used, (positions + bs - 1) / bs) << "after " << generated;
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(e.kv().memory().blocks_used, 0);
  EXPECT_GT(stats.accepted, 0);
  EXPECT_LT(stats.forwards, generated);  // more than one token per forward on average
}

TEST(Speculative, LookupProposesWhatFollowedTheEarliestMatch) {
  speculative::LookupDrafter d(2);
  std::vector<int32_t> ids = {5, 6, 7, 8, 9, 5, 6, 1, 2, 5, 6};
  std::vector<int32_t> out(3);
  ASSERT_EQ(d.propose(ids, out), 3);
  EXPECT_EQ(out, (std::vector<int32_t>{7, 8, 9}));  // earliest "5 6" wins
  ids = {1, 2, 3, 4};
  EXPECT_EQ(d.propose(ids, out), 0);  // no earlier occurrence
  ids = {3, 1, 2, 3};
  ASSERT_EQ(d.propose(ids, out), 3);  // falls back to a 1-gram
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3}));
}

TEST(Speculative, BadOptionsAreErrors) {
  Engine e(bundled_model(), testutil::engine_options(1, 2));
  GenerateRequest r;
  r.prompt = {1, 2, 3};
  r.speculative.mode = SpeculativeOptions::Mode::Draft;  // no draft engine
  EXPECT_THROW(generate(e, &bundled_tokenizer(), r), Error);
  r.speculative.mode = SpeculativeOptions::Mode::Lookup;
  r.speculative.draft_max = 0;
  EXPECT_THROW(generate(e, &bundled_tokenizer(), r), Error);
}

}  // namespace
}  // namespace nucleus
