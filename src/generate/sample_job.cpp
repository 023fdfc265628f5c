// Greedy and sampling generation as a Job: prefill the prompt once (in
// chunks if the scheduler says so), fork n sequences from its KV, then one
// decode row per live sequence per step; processors, token choice, stops and
// streaming text exactly as generate() has always defined them.
#include <algorithm>
#include <chrono>

#include "generate/job.h"
#include "generate/job_sequence.h"
#include "generate/text_stream.h"
#include "sampling/math.h"
#include "sampling/select.h"
#include "speculative/drafter.h"
#include "util/error.h"

namespace nucleus {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Live {
  JobSequence seq;
  bool done = false;
  SequenceResult result;
  std::unique_ptr<TextStream> text;
  // Speculation: the drafter, this step's draft, and the adaptive length.
  std::unique_ptr<speculative::Drafter> drafter;
  std::vector<int32_t> draft;
  int64_t n_draft = 0;  // drafted tokens verified this step
  int64_t k = 0;        // draft length to ask for next
  int64_t misses = 0;   // consecutive steps with nothing accepted
  int64_t cooldown = 0, backoff = 8;  // steps without drafting after misses
};

class SampleJob final : public Job {
 public:
  SampleJob(const JobContext& ctx, const Tokenizer* tokenizer, const GenerateRequest& req,
            JobTokenSink sink)
      : ctx_(ctx),
        req_(req),
        cfg_(req_.config),
        chain_(sampling::build_chain(cfg_)),
        sink_(std::move(sink)),
        vocab_(ctx.engine->vocab_size()),
        start_(Clock::now()) {
    const int64_t n_seq = cfg_.num_return_sequences;
    check(n_seq == 1 || cfg_.sampling(),
          "num_return_sequences > 1 needs sampling (do_sample with temperature > 0) or beams");
    if (!req_.kv_cache) ctx_.prefix = nullptr;
    out_.chain = chain_.describe();
    out_.kv_bytes_per_block = ctx.engine->kv().memory().bytes_per_block;
    seqs_.resize(static_cast<size_t>(n_seq));
    const int32_t last_prompt = req_.prompt.back();
    for (Live& s : seqs_) {
      // Room for every token up front, so that decoding appends without allocating.
      s.seq.ids.reserve(req_.prompt.size() + static_cast<size_t>(*cfg_.max_new_tokens));
      s.seq.ids = req_.prompt;
      s.result.tokens.reserve(static_cast<size_t>(*cfg_.max_new_tokens));
      s.text = std::make_unique<TextStream>(tokenizer, last_prompt, cfg_.stop_strings);
      s.result.trace.top_n = 5;
    }
    const SpeculativeOptions& sp = req_.speculative;
    if (sp.mode != SpeculativeOptions::Mode::Off && req_.kv_cache) {
      check(sp.draft_max >= 1 && sp.draft_max <= 64,
            "speculative: draft_max must be in [1, 64], got " + std::to_string(sp.draft_max));
      if (sp.mode == SpeculativeOptions::Mode::Draft) {
        check(sp.draft_engine != nullptr, "speculative draft: no draft model given");
        check(sp.draft_engine->vocab_size() == vocab_,
              "speculative draft: the draft model's vocabulary (" +
                  std::to_string(sp.draft_engine->vocab_size()) + ") differs from the target's (" +
                  std::to_string(vocab_) + ")");
      }
      for (Live& s : seqs_) {
        if (sp.mode == SpeculativeOptions::Mode::Lookup)
          s.drafter = std::make_unique<speculative::LookupDrafter>(sp.ngram);
        else
          s.drafter = std::make_unique<speculative::DraftModelDrafter>(*sp.draft_engine);
        s.draft.resize(static_cast<size_t>(sp.draft_max));
        s.k = std::min<int64_t>(sp.draft_max, 4);
      }
    }
    row_.resize(static_cast<size_t>(vocab_));
    logprobs_.resize(static_cast<size_t>(vocab_));
    probs_.resize(static_cast<size_t>(vocab_));
    order_.reserve(static_cast<size_t>(n_seq));
  }

  void plan(Batch& batch, int64_t& budget, bool decode_pass) override {
    if (!started_) {
      started_ = true;
      start_prefill_ = Clock::now();
    }
    if (prefilling()) {
      // Only the first sequence computes the prompt; the others fork it.
      JobSequence& s = seqs_[0].seq;
      if (decode_pass || budget <= 0) return;
      if (s.kv < 0) {
        s.open(ctx_);
        cached_ += s.cached;
      }
      if (s.plan(batch, budget)) order_.push_back(0);
      budget -= s.planned;
      return;
    }
    for (size_t i = 0; i < seqs_.size(); ++i) {
      Live& l = seqs_[i];
      if (l.done) continue;
      JobSequence& s = l.seq;
      if (!req_.kv_cache && s.kv >= 0 && s.fed > 0 && s.planned == 0 && decode_pass) {
        // Without a cache every step recomputes the whole sequence.
        ctx_.engine->kv().truncate(s.kv, 0);
        s.fed = 0;
      }
      if (s.kv < 0) s.open(ctx_);
      const bool one_row = s.pending() == 1;
      if (decode_pass != one_row) continue;
      if (!decode_pass && budget <= 0) continue;
      l.n_draft = 0;
      if (s.plan(batch, decode_pass ? 1 : budget)) {
        order_.push_back(static_cast<int64_t>(i));
        if (decode_pass && l.drafter) add_draft(l, batch);
      }
      if (!decode_pass) budget -= s.planned;
    }
  }

  int64_t blocks_needed() const override {
    int64_t n = 0;
    for (const Live& l : seqs_) n += l.seq.blocks_needed(ctx_.engine->kv());
    return n;
  }

  void unplan() override {
    for (Live& l : seqs_) l.seq.planned = 0;
    order_.clear();
  }

  void consume(std::span<const float* const> rows, const OpCounters& counters) override {
    const bool was_prefill = prefilling();
    for (Live& l : seqs_)
      if (l.seq.planned > 0) l.seq.advance(ctx_);
    if (was_prefill) {
      accumulate(out_.prefill.counters, counters);
      if (rows.empty()) return;  // a chunk of the prompt, no logits yet
      out_.prefill.seconds = seconds_between(start_prefill_, Clock::now());
      out_.prefill.tokens = static_cast<int64_t>(req_.prompt.size());
      prefilled_ = true;
      start_decode_ = Clock::now();
      note_peak();
      // Every sequence starts from the prompt's logits.
      for (size_t i = 1; i < seqs_.size(); ++i) {
        JobSequence& s = seqs_[i].seq;
        const JobSequence& root = seqs_[0].seq;
        s.kv = ctx_.engine->kv().fork(root.kv);
        s.fed = root.fed;
        s.cursor = root.cursor;
      }
      for (size_t i = 0; i < seqs_.size(); ++i) choose(static_cast<int64_t>(i), rows[0]);
    } else {
      accumulate(out_.decode.counters, counters);
      note_peak();
      ++out_.speculative.forwards;
      size_t r = 0;
      for (int64_t i : order_) {
        const size_t n = static_cast<size_t>(seqs_[static_cast<size_t>(i)].n_draft) + 1;
        verify(i, rows.subspan(r, n));
        r += n;
      }
    }
    order_.clear();
    if (finished()) end_ = Clock::now();
  }

  bool finished() const override {
    return std::all_of(seqs_.begin(), seqs_.end(), [](const Live& l) { return l.done; });
  }

  void preempt() override {
    for (Live& l : seqs_) l.seq.close(ctx_.engine->kv());
    order_.clear();
  }

  void abort(const std::string& reason) override {
    for (Live& l : seqs_) {
      if (l.done) continue;
      l.done = true;
      l.result.stop_reason = reason;
    }
    preempt();
    end_ = Clock::now();
  }

  GenerateResult take_result() override {
    if (!prefilled_) out_.prefill.tokens = static_cast<int64_t>(req_.prompt.size());
    out_.decode.seconds = prefilled_ ? seconds_between(start_decode_, end_) : 0.0;
    for (Live& l : seqs_) {
      l.result.text = l.text->text();
      out_.decode.tokens += static_cast<int64_t>(l.result.tokens.size());
      l.seq.close(ctx_.engine->kv());
      out_.sequences.push_back(std::move(l.result));
    }
    // The first token of each sequence came from the prefill's logits.
    if (prefilled_) out_.decode.tokens -= static_cast<int64_t>(seqs_.size());
    return std::move(out_);
  }

  int64_t prompt_tokens() const override { return static_cast<int64_t>(req_.prompt.size()); }
  bool prefilling() const override { return !prefilled_; }
  int64_t cached_prompt_tokens() const override { return cached_; }
  int64_t min_blocks() const override {
    const int64_t bs = ctx_.engine->kv().shape().block_size;
    return (static_cast<int64_t>(req_.prompt.size()) + 1 + bs - 1) / bs +
           static_cast<int64_t>(seqs_.size());
  }

 private:
  void note_peak() {
    out_.kv_peak_blocks = std::max(out_.kv_peak_blocks, ctx_.engine->kv().memory().blocks_used);
  }

  // Drafts up to l.k tokens after the sequence's ids and adds them as rows
  // (each asks for logits) behind its decode row.
  void add_draft(Live& l, Batch& batch) {
    if (l.k == 0) {
      if (--l.cooldown > 0) return;
      l.k = 1;  // try again after the cool-down
    }
    const int64_t left = *cfg_.max_new_tokens - static_cast<int64_t>(l.result.tokens.size()) - 1;
    const int64_t want = std::min(l.k, left);
    if (want <= 0) return;
    const int64_t m = l.drafter->propose(l.seq.ids, std::span<int32_t>(l.draft.data(), want));
    for (int64_t j = 0; j < m; ++j) batch.add(l.seq.kv, l.draft[static_cast<size_t>(j)], true);
    l.seq.planned += m;
    l.n_draft = m;
  }

  // Decode row plus drafted rows of sequence i: each token is chosen exactly
  // as without speculation (same logits bits, same draw); the next row is
  // used only while the chosen token equals the draft. The K/V of rows after
  // the first mismatch are dropped.
  void verify(int64_t i, std::span<const float* const> rows) {
    Live& l = seqs_[static_cast<size_t>(i)];
    const int64_t m = l.n_draft;
    int64_t accepted = 0;
    for (int64_t j = 0; j <= m; ++j) {
      choose(i, rows[static_cast<size_t>(j)]);
      if (l.done) break;
      if (j == m || l.seq.ids.back() != l.draft[static_cast<size_t>(j)]) break;
      ++accepted;
    }
    l.n_draft = 0;
    if (m == 0) return;
    out_.speculative.drafted += m;
    out_.speculative.accepted += accepted;
    ++out_.speculative.verify_forwards;
    if (!l.done) {
      // The cache holds every planned row; keep the ones that led somewhere.
      const int64_t keep = static_cast<int64_t>(l.seq.ids.size()) - 1;
      ctx_.engine->kv().truncate(l.seq.kv, keep);
      l.seq.fed = keep;
      if (ctx_.prefix != nullptr) ctx_.prefix->publish(l.seq.kv, l.seq.ids, l.seq.cursor);
    }
    // Adaptive length (Hugging Face's heuristic): longer after a full
    // acceptance, shorter otherwise; after repeated total misses stop
    // drafting for a while (doubling), so text that never matches costs
    // next to nothing.
    const int64_t max_k = req_.speculative.draft_max;
    if (accepted == m) {
      l.k = std::min(max_k, l.k + 2);
    } else {
      l.k = std::max<int64_t>(1, l.k - 1);
    }
    if (accepted == 0) {
      if (++l.misses >= 3) {
        l.k = 0;
        l.cooldown = l.backoff;
        l.backoff = std::min<int64_t>(l.backoff * 2, 256);
        l.misses = 0;
      }
    } else {
      l.misses = 0;
      l.backoff = 8;
    }
  }

  // The next token of sequence i from its logits row.
  void choose(int64_t i, const float* logits) {
    Live& s = seqs_[static_cast<size_t>(i)];
    std::copy(logits, logits + vocab_, row_.begin());
    std::span<float> row(row_);
    sampling::log_softmax(row, logprobs_);
    chain_.apply(row, sampling::make_view(s.seq.ids, static_cast<int64_t>(req_.prompt.size())),
                 scratch_, req_.trace ? &s.result.trace : nullptr);
    const uint64_t step = s.result.tokens.size();
    const int32_t tok = cfg_.sampling()
                            ? sampling::sample(row, probs_, cfg_.seed, static_cast<uint64_t>(i), step)
                            : sampling::greedy(row);
    s.seq.ids.push_back(tok);
    s.result.tokens.push_back(tok);
    const float lp = logprobs_[static_cast<size_t>(tok)];
    s.result.score += lp;
    std::string piece = s.text->push(tok);
    if (std::find(cfg_.eos_token_ids.begin(), cfg_.eos_token_ids.end(), tok) !=
        cfg_.eos_token_ids.end()) {
      s.done = true;
      s.result.stop_reason = "eos";
    } else if (s.text->stopped()) {
      s.done = true;
      s.result.stop_reason = "stop";
    } else if (static_cast<int64_t>(s.result.tokens.size()) >= *cfg_.max_new_tokens) {
      s.done = true;
      s.result.stop_reason = "length";
    } else if (cfg_.max_time && seconds_between(start_, Clock::now()) >= *cfg_.max_time) {
      s.done = true;
      s.result.stop_reason = "time";
    }
    if (s.done) {
      piece += s.text->finish();
      s.seq.close(ctx_.engine->kv());
    }
    if (sink_) {
      JobToken t;
      t.index = i;
      t.token = tok;
      t.logprob = lp;
      t.logprobs = logprobs_;
      t.text = piece;
      t.last = s.done;
      t.stop_reason = s.result.stop_reason;
      sink_(t);
    }
  }

  JobContext ctx_;
  GenerateRequest req_;
  const sampling::GenerationConfig& cfg_;
  sampling::ProcessorChain chain_;
  JobTokenSink sink_;
  int64_t vocab_;
  std::vector<Live> seqs_;
  std::vector<int64_t> order_;  // sequences whose logits rows come this step, in row order
  std::vector<float> row_, logprobs_, probs_;
  sampling::ProcessorScratch scratch_;
  GenerateResult out_;
  bool started_ = false, prefilled_ = false;
  int64_t cached_ = 0;
  Clock::time_point start_, start_prefill_, start_decode_, end_;
};

}  // namespace

std::unique_ptr<Job> make_sample_job(const JobContext& ctx, const Tokenizer* tokenizer,
                                     const GenerateRequest& request, JobTokenSink on_token) {
  return std::make_unique<SampleJob>(ctx, tokenizer, request, std::move(on_token));
}

}  // namespace nucleus
