// The scheduler's promise: a request's tokens and log-probs are the same
// alone and among many others, whatever the batch, the prefill chunking,
// prefix-cache hits or pre-emption. Solo runs are generate() (itself checked
// against Hugging Face in the generate_* tests); batched runs go through one
// Scheduler with small step budgets and pools to force every mechanism.
#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "generate_test_util.h"
#include "serve/scheduler.h"
#include "serve/service.h"
#include "util/error.h"

namespace nucleus {
namespace {

using testutil::bundled_model;
using testutil::bundled_tokenizer;

struct Outcome {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<double> scores;
  std::vector<std::vector<float>> logprobs;  // per sequence, per token (streamed)
  std::vector<std::string> texts;
  std::vector<std::string> reasons;
};

Outcome from_result(const GenerateResult& r) {
  Outcome o;
  for (const SequenceResult& s : r.sequences) {
    o.tokens.push_back(s.tokens);
    o.scores.push_back(s.score);
    o.texts.push_back(s.text);
    o.reasons.push_back(s.stop_reason);
  }
  return o;
}

std::vector<int32_t> prompt_of(const std::string& text) {
  return bundled_tokenizer().encode(text, /*add_bos=*/true);
}

// A varied set: greedy, seeded sampling with different chains, n > 1, stop
// strings, beams; several share a long prefix.
std::vector<GenerateRequest> request_mix() {
  const std::string shared =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park with her friends.";
  const std::vector<std::string> prompts = {
      shared + " One day", shared + " Her mom said", "The cat", "Tom and Sam went to the",
      shared, "A big red ball", shared + " Lily saw a bird", "Once"};
  std::vector<GenerateRequest> reqs;
  for (size_t i = 0; i < 17; ++i) {
    GenerateRequest r;
    r.prompt = prompt_of(prompts[i % prompts.size()]);
    auto& c = r.config;
    c.max_new_tokens = 8 + static_cast<int64_t>((i * 7) % 30);
    switch (i % 6) {
      case 0:  // greedy
        break;
      case 1:
        c.do_sample = true;
        c.temperature = 0.8;
        c.top_p = 0.9;
        c.seed = 100 + i;
        break;
      case 2:
        c.do_sample = true;
        c.top_k = 20;
        c.repetition_penalty = 1.3;
        c.seed = 7;
        c.num_return_sequences = 3;
        break;
      case 3:
        c.do_sample = true;
        c.temperature = 1.2;
        c.min_p = 0.05;
        c.seed = 42 + i;
        c.stop_strings = {"."};
        break;
      case 4:
        c.num_beams = 3;
        c.num_return_sequences = 2;
        c.max_new_tokens = 10;
        break;
      case 5:
        c.do_sample = true;
        c.sampler_order = "llama.cpp";
        c.frequency_penalty = 0.5;
        c.presence_penalty = 0.3;
        c.seed = 9;
        break;
    }
    reqs.push_back(r);
  }
  return reqs;
}

std::vector<Outcome> solo_runs(const std::vector<GenerateRequest>& reqs) {
  Engine e(bundled_model(), testutil::engine_options(1, 4));
  std::vector<Outcome> out;
  for (const GenerateRequest& r : reqs) out.push_back(from_result(generate(e, &bundled_tokenizer(), r)));
  return out;
}

struct BatchedRun {
  std::vector<Outcome> outcomes;
  serve::MetricsSnapshot metrics;
};

BatchedRun batched_run(const std::vector<GenerateRequest>& reqs, EngineOptions eo,
                       serve::SchedulerOptions so, int threads = 2) {
  eo.threads = threads;
  Engine e(bundled_model(), eo);
  serve::Scheduler sched(e, &bundled_tokenizer(), so);
  BatchedRun run;
  run.outcomes.resize(reqs.size());
  std::vector<std::map<int64_t, std::vector<float>>> streamed(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    serve::RequestOptions ro;
    ro.gen = reqs[i];
    serve::RequestCallbacks cb;
    cb.on_token = [&streamed, i](const serve::TokenEvent& t) {
      streamed[i][t.index].push_back(t.logprob);
    };
    cb.on_done = [&run, i](GenerateResult&& r) { run.outcomes[i] = from_result(r); };
    cb.on_error = [](const std::string& m) { ADD_FAILURE() << m; };
    sched.add(ro, cb);
    // Staggered arrivals: a few steps between requests.
    if (i % 3 == 2) {
      for (int s = 0; s < 3; ++s) sched.step();
    }
  }
  for (int guard = 0; !sched.idle() && guard < 100000; ++guard) sched.step();
  EXPECT_TRUE(sched.idle());
  sched.fill_metrics(run.metrics);
  for (size_t i = 0; i < reqs.size(); ++i)
    for (auto& [idx, lps] : streamed[i]) {
      auto& lp = run.outcomes[i].logprobs;
      if (lp.size() <= static_cast<size_t>(idx)) lp.resize(static_cast<size_t>(idx) + 1);
      lp[static_cast<size_t>(idx)] = lps;
    }
  return run;
}

void expect_same(const std::vector<Outcome>& solo, const BatchedRun& run,
                 const std::vector<GenerateRequest>& reqs) {
  for (size_t i = 0; i < solo.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    const Outcome& a = solo[i];
    const Outcome& b = run.outcomes[i];
    ASSERT_EQ(a.tokens, b.tokens);
    ASSERT_EQ(a.scores, b.scores);  // exact: the same bits
    ASSERT_EQ(a.texts, b.texts);
    ASSERT_EQ(a.reasons, b.reasons);
    if (reqs[i].config.num_beams == 1) {
      ASSERT_EQ(b.logprobs.size(), b.tokens.size());
      for (size_t s = 0; s < b.tokens.size(); ++s) {
        double sum = 0.0;
        for (float lp : b.logprobs[s]) sum += lp;
        EXPECT_EQ(sum, b.scores[s]);  // the streamed log-probs are the ones scored
      }
    }
  }
}

TEST(Scheduler, SameTokensAloneAndAmongOthers) {
  const auto reqs = request_mix();
  const auto solo = solo_runs(reqs);
  serve::SchedulerOptions so;
  so.max_running = 16;
  so.step_tokens = 24;  // forces chunked prefill of the longer prompts
  so.prefill_time_share = 0.0;  // fixed chunks: the same steps on every machine
  const BatchedRun run = batched_run(reqs, testutil::engine_options(2, 64), so);
  expect_same(solo, run, reqs);
  EXPECT_GT(run.metrics.prefix_cache_hits_total, 0);  // the shared prefix was reused
  EXPECT_EQ(run.metrics.kv_blocks_in_use, 0);          // nothing leaked
  EXPECT_EQ(run.metrics.num_preemptions_total, 0);
}

TEST(Scheduler, SameTokensUnderPreemption) {
  const auto reqs = request_mix();
  const auto solo = solo_runs(reqs);
  serve::SchedulerOptions so;
  so.max_running = 16;
  so.step_tokens = 64;
  so.prefill_time_share = 0.0;  // whole 64-row chunks: the pool must run short
  EngineOptions eo = testutil::engine_options(1, 1);
  eo.kv_blocks = 24;  // far too small for 16 at once
  const BatchedRun run = batched_run(reqs, eo, so, 1);
  expect_same(solo, run, reqs);
  EXPECT_GT(run.metrics.num_preemptions_total, 0);
  EXPECT_EQ(run.metrics.kv_blocks_in_use, 0);
}

TEST(Scheduler, SameTokensWithoutPrefixCache) {
  const auto reqs = request_mix();
  const auto solo = solo_runs(reqs);
  serve::SchedulerOptions so;
  so.prefix_cache = false;
  so.max_running = 5;
  so.step_tokens = 7;
  so.prefill_time_share = 0.0;
  const BatchedRun run = batched_run(reqs, testutil::engine_options(2, 32), so);
  expect_same(solo, run, reqs);
  EXPECT_EQ(run.metrics.prefix_cache_hits_total, 0);
}

TEST(Scheduler, PrefixCacheSavesPrefillRows) {
  const std::string shared =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park with her friends. One day, she saw a big tree";
  GenerateRequest a, b;
  a.prompt = prompt_of(shared + " and");
  b.prompt = prompt_of(shared + " with");
  a.config.max_new_tokens = b.config.max_new_tokens = 12;
  const auto solo = solo_runs({a, b});
  Engine e(bundled_model(), testutil::engine_options(1, 8));
  serve::Scheduler sched(e, &bundled_tokenizer(), serve::SchedulerOptions{});
  std::vector<Outcome> got(2);
  std::vector<int64_t> prefilled;
  for (int i = 0; i < 2; ++i) {
    serve::RequestOptions ro;
    ro.gen = i == 0 ? a : b;
    serve::RequestCallbacks cb;
    cb.on_done = [&got, i](GenerateResult&& r) { got[i] = from_result(r); };
    sched.add(ro, cb);
    while (!sched.idle()) sched.step();
    serve::MetricsSnapshot m;
    sched.fill_metrics(m);
    prefilled.push_back(m.prefill_tokens_total);
    if (i == 1) {
      const int64_t bs = e.kv().shape().block_size;
      const int64_t common = static_cast<int64_t>(a.prompt.size()) - 1;  // all but the last id
      EXPECT_EQ(m.prefix_cache_hits_total, common / bs * bs);
      EXPECT_GT(m.kv_blocks_cached, 0);
      EXPECT_EQ(m.kv_blocks_in_use, 0);
    }
  }
  EXPECT_EQ(got[0].tokens, solo[0].tokens);
  EXPECT_EQ(got[1].tokens, solo[1].tokens);
  EXPECT_EQ(got[1].scores, solo[1].scores);
  // The second prompt computed only what was not cached.
  const int64_t second = prefilled[1] - prefilled[0];
  EXPECT_LT(second, static_cast<int64_t>(b.prompt.size()) / 2);
}

TEST(Scheduler, CancelFreesBlocksWithinOneStep) {
  Engine e(bundled_model(), testutil::engine_options(1, 8));
  serve::SchedulerOptions so;
  so.prefix_cache = false;
  serve::Scheduler sched(e, &bundled_tokenizer(), so);
  bool cancel = false, done = false;
  std::string reason;
  serve::RequestOptions ro;
  ro.gen.prompt = prompt_of("Once upon a time");
  ro.gen.config.max_new_tokens = 200;
  serve::RequestCallbacks cb;
  cb.cancelled = [&cancel] { return cancel; };
  cb.on_done = [&](GenerateResult&& r) {
    done = true;
    reason = r.sequences.at(0).stop_reason;
  };
  sched.add(ro, cb);
  for (int i = 0; i < 5; ++i) sched.step();
  EXPECT_GT(e.kv().memory().blocks_used, 0);
  cancel = true;
  sched.step();
  EXPECT_TRUE(done);
  EXPECT_EQ(reason, "cancelled");
  EXPECT_EQ(e.kv().memory().blocks_used, 0);
  EXPECT_TRUE(sched.idle());
}

TEST(Scheduler, RejectsBadRequestsBeforeQueueing) {
  Engine e(bundled_model(), testutil::engine_options(1, 2));
  serve::Scheduler sched(e, &bundled_tokenizer(), serve::SchedulerOptions{});
  serve::RequestOptions ro;
  EXPECT_THROW(sched.add(ro, {}), Error);  // empty prompt
  ro.gen.prompt = {1, 999999};
  EXPECT_THROW(sched.add(ro, {}), Error);  // id out of range
  ro.gen.prompt = {1, 2};
  ro.top_logprobs = 21;
  EXPECT_THROW(sched.add(ro, {}), Error);
  EXPECT_TRUE(sched.idle());
}

TEST(Service, ConcurrentSubmitsMatchSoloAndQueueIsBounded) {
  const auto reqs = request_mix();
  const auto solo = solo_runs(reqs);
  Engine e(bundled_model(), testutil::engine_options(2, 64));
  serve::ServiceOptions so;
  so.scheduler.max_running = 16;
  so.scheduler.step_tokens = 32;
  so.max_queue = 64;
  serve::Service svc(e, &bundled_tokenizer(), so);
  std::vector<std::shared_ptr<serve::RequestHandle>> handles;
  for (const auto& r : reqs) {
    serve::RequestOptions ro;
    ro.gen = r;
    ro.top_logprobs = 3;
    handles.push_back(svc.submit(ro));
    ASSERT_NE(handles.back(), nullptr);
  }
  for (size_t i = 0; i < handles.size(); ++i) {
    serve::Event ev;
    bool finished = false;
    for (int guard = 0; guard < 2000 && !finished; ++guard) {
      if (!handles[i]->next(ev, std::chrono::milliseconds(100))) continue;
      if (ev.kind == serve::Event::Kind::Token) {
        ASSERT_EQ(ev.token.top.size(), 3u);
        EXPECT_GE(ev.token.top[0].logprob, ev.token.logprob);
      } else {
        ASSERT_EQ(ev.kind, serve::Event::Kind::Done) << ev.error;
        EXPECT_EQ(from_result(ev.result).tokens, solo[i].tokens) << "request " << i;
        EXPECT_EQ(from_result(ev.result).scores, solo[i].scores) << "request " << i;
        finished = true;
      }
    }
    EXPECT_TRUE(finished) << "request " << i;
  }
  svc.stop(std::chrono::milliseconds(1000));
  EXPECT_EQ(svc.metrics().kv_blocks_in_use, 0);
  EXPECT_EQ(svc.submit(serve::RequestOptions{}), nullptr);  // draining: refused
}

TEST(Service, DrainDeadlineCancelsLongRequests) {
  Engine e(bundled_model(), testutil::engine_options(1, 4));
  serve::ServiceOptions so;
  serve::Service svc(e, &bundled_tokenizer(), so);
  serve::RequestOptions ro;
  ro.gen.prompt = prompt_of("Once upon a time");
  ro.gen.config.max_new_tokens = 400;
  ro.gen.config.min_new_tokens = 400;  // EOS suppressed: never ends early
  auto h = svc.submit(ro);
  ASSERT_NE(h, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  svc.stop(std::chrono::milliseconds(0));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  serve::Event ev;
  std::string reason;
  while (h->next(ev, std::chrono::milliseconds(10))) {
    ASSERT_NE(ev.kind, serve::Event::Kind::Error) << ev.error;
    if (ev.kind == serve::Event::Kind::Done) reason = ev.result.sequences.at(0).stop_reason;
  }
  EXPECT_TRUE(reason == "cancelled" || reason == "length") << reason;
}

}  // namespace
}  // namespace nucleus
