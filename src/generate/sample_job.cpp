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
      if (s.plan(batch, decode_pass ? 1 : budget)) order_.push_back(static_cast<int64_t>(i));
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
      add(out_.prefill.counters, counters);
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
      add(out_.decode.counters, counters);
      note_peak();
      for (size_t r = 0; r < order_.size(); ++r) choose(order_[r], rows[r]);
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
  static void add(OpCounters& a, const OpCounters& b) {
    a.matmul_flops += b.matmul_flops;
    a.attention_flops += b.attention_flops;
    a.weight_bytes += b.weight_bytes;
    a.kv_read_bytes += b.kv_read_bytes;
    a.kv_write_bytes += b.kv_write_bytes;
  }
  void note_peak() {
    out_.kv_peak_blocks = std::max(out_.kv_peak_blocks, ctx_.engine->kv().memory().blocks_used);
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
