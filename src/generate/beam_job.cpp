// Beam search (transformers 4.40 BeamSearchScorer semantics, described in
// generate/beam_search.cpp) as a Job: prefill the prompt, then each step one
// decode row per beam; ranking, hypotheses and forking happen in consume().
// Pre-emption restarts the search from the prompt: the search is a pure
// function of the logits, so it finds the same beams again.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "generate/beam_search.h"
#include "generate/job.h"
#include "generate/job_sequence.h"
#include "sampling/math.h"
#include "sampling/select.h"
#include "util/error.h"

namespace nucleus {
namespace {

using Clock = std::chrono::steady_clock;

struct Beam {
  JobSequence seq;
  float score = 0.0f;  // running sum of processed log-probs (float32, as HF)
};

struct Candidate {
  float score;
  int64_t beam;
  int32_t token;
  int64_t drawn = 0;  // draw order under sampling: the tie-break among equal scores
};

class BeamJob final : public Job {
 public:
  BeamJob(const JobContext& ctx, const Tokenizer* tokenizer, const GenerateRequest& req)
      : ctx_(ctx),
        tokenizer_(tokenizer),
        req_(req),
        cfg_(req_.config),
        chain_(sampling::build_chain(cfg_)),
        nb_(cfg_.num_beams),
        vocab_(ctx.engine->vocab_size()),
        prompt_len_(static_cast<int64_t>(req_.prompt.size())),
        max_length_(prompt_len_ + *cfg_.max_new_tokens),
        n_candidates_(std::max<int64_t>(2, 1 + static_cast<int64_t>(cfg_.eos_token_ids.size())) *
                      nb_),
        full_copy_(req_.beam_full_copy && req_.kv_cache),
        hyps_(nb_, cfg_.length_penalty, cfg_.early_stopping, max_length_),
        start_(Clock::now()) {
    check(cfg_.stop_strings.empty(), "stop strings are not supported with beam search");
    check(n_candidates_ <= nb_ * vocab_, "beam search: num_beams=" + std::to_string(nb_) +
                                             " needs more candidates than the vocabulary has");
    // Beams are never shared through the prefix cache: a restarted search
    // recomputes its own prompt (one job's rows, the same bits either way).
    ctx_.prefix = nullptr;
    out_.chain = chain_.describe();
    out_.kv_bytes_per_block = ctx.engine->kv().memory().bytes_per_block;
    // Two generations of beams, swapped each step; ids have room for every
    // token, so building the next beams copies ids without allocating.
    beams_.resize(static_cast<size_t>(nb_));
    fresh_.resize(static_cast<size_t>(nb_));
    for (int64_t b = 0; b < nb_; ++b) {
      beams_[b].seq.ids.reserve(static_cast<size_t>(max_length_));
      fresh_[b].seq.ids.reserve(static_cast<size_t>(max_length_));
    }
    scores_.resize(static_cast<size_t>(nb_ * vocab_));
    cands_.reserve(static_cast<size_t>(n_candidates_));
    next_.reserve(static_cast<size_t>(nb_));
    if (cfg_.sampling()) {
      probs_.resize(scores_.size());
      taken_.resize(scores_.size());
      rest_.reserve(scores_.size());
    } else {
      order_.resize(scores_.size());
    }
    claimed_.resize(static_cast<size_t>(nb_));
    rows_.reserve(static_cast<size_t>(nb_));
    restart();
  }

  void plan(Batch& batch, int64_t& budget, bool decode_pass) override {
    if (!started_) {
      started_ = true;
      t0_ = Clock::now();
    }
    if (prefilling()) {
      if (decode_pass || budget <= 0) return;
      JobSequence& root = beams_[0].seq;
      if (root.kv < 0) root.open(ctx_);
      root.plan(batch, budget);
      budget -= root.planned;
      return;
    }
    for (Beam& b : beams_) {
      JobSequence& s = b.seq;
      if (!req_.kv_cache && decode_pass && s.fed > 0) {
        ctx_.engine->kv().truncate(s.kv, 0);  // no cache: recompute every step
        s.fed = 0;
      }
      const bool one_row = s.pending() == 1;
      if (decode_pass != one_row || (!decode_pass && budget <= 0)) continue;
      s.plan(batch, decode_pass ? 1 : budget);
      if (!decode_pass) budget -= s.planned;
    }
  }

  int64_t blocks_needed() const override {
    int64_t n = 0;
    for (const Beam& b : beams_) n += b.seq.blocks_needed(ctx_.engine->kv());
    return n;
  }
  void unplan() override {
    for (Beam& b : beams_) b.seq.planned = 0;
  }

  void consume(std::span<const float* const> rows, const OpCounters& counters) override {
    if (prefilling()) {
      beams_[0].seq.advance(ctx_);
      accumulate(out_.prefill.counters, counters);
      if (rows.empty()) return;
      if (!req_.kv_cache) ctx_.engine->kv().truncate(beams_[0].seq.kv, 0), beams_[0].seq.fed = 0;
      note_peak();
      out_.prefill.seconds = std::chrono::duration<double>(Clock::now() - t0_).count();
      out_.prefill.tokens = prompt_len_;
      prefilled_ = true;
      // HF starts num_beams copies of the prompt; all but the first at -1e9
      // so the first step expands only one of them.
      KvCache& kv = ctx_.engine->kv();
      const JobSequence& root = beams_[0].seq;
      for (int64_t b = 1; b < nb_; ++b) {
        JobSequence& s = beams_[b].seq;
        s.kv = full_copy_ ? kv.clone(root.kv) : kv.fork(root.kv);
        s.fed = root.fed;
        beams_[b].score = -1e9f;
      }
      note_peak();
      rows_.assign(static_cast<size_t>(nb_), rows[0]);
      t_decode_ = Clock::now();
      step(rows_);
      return;
    }
    for (Beam& b : beams_) b.seq.advance(ctx_);
    accumulate(out_.decode.counters, counters);
    note_peak();
    out_.decode.tokens += nb_;
    step(rows);
  }

  bool finished() const override { return finished_; }

  void preempt() override {
    for (Beam& b : beams_) b.seq.close(ctx_.engine->kv());
    restart();
  }

  void abort(const std::string& reason) override {
    aborted_ = reason;
    finish();
  }

  GenerateResult take_result() override {
    const std::vector<BeamHypothesis> best = hyps_.sorted();
    const int64_t n_ret =
        std::min<int64_t>(cfg_.num_return_sequences, static_cast<int64_t>(best.size()));
    for (int64_t i = 0; i < n_ret; ++i) {
      const BeamHypothesis& h = best[static_cast<size_t>(i)];
      SequenceResult r;
      r.tokens.assign(h.ids.begin() + prompt_len_, h.ids.end());
      if (h.eos_token >= 0) r.tokens.push_back(h.eos_token);
      r.score = h.score;
      r.stop_reason = h.eos_token >= 0       ? "eos"
                      : !aborted_.empty()    ? aborted_
                      : timed_out_           ? "time"
                                             : "length";
      if (tokenizer_ != nullptr) {
        StreamingDetokenizer detok(*tokenizer_, req_.prompt.back());
        for (int32_t t : r.tokens) r.text += detok.push(t);
        r.text += detok.flush();
      }
      out_.sequences.push_back(std::move(r));
    }
    return std::move(out_);
  }

  int64_t prompt_tokens() const override { return prompt_len_; }
  bool prefilling() const override { return !prefilled_; }
  int64_t cached_prompt_tokens() const override { return 0; }
  int64_t min_blocks() const override {
    const int64_t bs = ctx_.engine->kv().shape().block_size;
    return (prompt_len_ + 1 + bs - 1) / bs + nb_;
  }

 private:
  void note_peak() {
    out_.kv_peak_blocks = std::max(out_.kv_peak_blocks, ctx_.engine->kv().memory().blocks_used);
  }
  bool is_eos(int32_t t) const {
    return std::find(cfg_.eos_token_ids.begin(), cfg_.eos_token_ids.end(), t) !=
           cfg_.eos_token_ids.end();
  }

  // Back to the state before the prompt (construction and pre-emption).
  void restart() {
    for (int64_t b = 0; b < nb_; ++b) {
      beams_[b].seq.ids = req_.prompt;
      beams_[b].seq.fed = 0;
      beams_[b].score = 0.0f;
    }
    hyps_ = BeamHypotheses(nb_, cfg_.length_penalty, cfg_.early_stopping, max_length_);
    prefilled_ = false;
    cur_len_ = prompt_len_;
    step_ = 0;
    out_.prefill = {};
    out_.decode = {};
  }

  // One step of the search over the beams' logits rows.
  void step(std::span<const float* const> rows) {
    const int64_t nb = nb_, vocab = vocab_;
    for (int64_t b = 0; b < nb; ++b) {
      std::span<float> row(scores_.data() + b * vocab, static_cast<size_t>(vocab));
      sampling::log_softmax(std::span<const float>(rows[b], static_cast<size_t>(vocab)), row);
      chain_.apply(row, sampling::make_view(beams_[b].seq.ids, prompt_len_), scratch_);
      for (float& s : row) s += beams_[b].score;
    }
    rank();

    // Walk the candidates: finished hypotheses and the next beams.
    next_.clear();
    for (int64_t rank = 0; rank < n_candidates_ && static_cast<int64_t>(next_.size()) < nb;
         ++rank) {
      const Candidate& c = cands_[rank];
      if (is_eos(c.token)) {
        if (rank >= nb) continue;
        hyps_.add(beams_[c.beam].seq.ids, c.score, cur_len_ + 1 - prompt_len_, c.token);
      } else {
        next_.push_back(c);
      }
    }
    check(static_cast<int64_t>(next_.size()) == nb, "beam search: fewer candidates than beams");
    // HF judges "done" by the best of all ranked candidates, EOS ones included.
    const bool done = hyps_.is_done(cands_[0].score, cur_len_ + 1, prompt_len_);

    // New beams: the first child of a beam continues its sequence, later
    // children fork it (before anything is appended).
    KvCache& kv = ctx_.engine->kv();
    std::fill(claimed_.begin(), claimed_.end(), 0);
    for (int64_t j = 0; j < nb; ++j) {
      const Beam& parent = beams_[next_[j].beam];
      Beam& f = fresh_[j];
      f.seq.ids.assign(parent.seq.ids.begin(), parent.seq.ids.end());
      f.seq.ids.push_back(next_[j].token);
      f.seq.fed = parent.seq.fed;
      f.seq.planned = 0;
      f.score = next_[j].score;
      if (full_copy_) {
        f.seq.kv = kv.clone(parent.seq.kv);
      } else if (!claimed_[next_[j].beam]) {
        claimed_[next_[j].beam] = 1;
        f.seq.kv = parent.seq.kv;
      } else {
        f.seq.kv = kv.fork(parent.seq.kv);
      }
    }
    note_peak();
    for (int64_t b = 0; b < nb; ++b)
      if (!claimed_[b]) kv.release(beams_[b].seq.kv);
    std::swap(beams_, fresh_);
    ++cur_len_;
    ++step_;
    if (done) {
      search_done_ = true;
      finish();
    } else if (cur_len_ >= max_length_) {
      finish();
    } else if (cfg_.max_time &&
               std::chrono::duration<double>(Clock::now() - start_).count() >= *cfg_.max_time) {
      timed_out_ = true;
      finish();
    }
  }

  // Rank (or sample) candidates over all beams into cands_.
  void rank() {
    const int64_t vocab = vocab_;
    cands_.clear();
    if (cfg_.sampling()) {
      // Drawn without replacement while any probability is left; float32
      // softmax over num_beams × vocab can leave fewer positive entries than
      // candidates (a confident beam underflows the rest), and then the best
      // remaining scores fill up, as the greedy ranking would take them.
      sampling::softmax(scores_, probs_);
      std::fill(taken_.begin(), taken_.end(), 0);
      int64_t positive =
          std::count_if(probs_.begin(), probs_.end(), [](float p) { return p > 0.0f; });
      for (int64_t j = 0; j < n_candidates_ && positive > 0; ++j, --positive) {
        const double u =
            sampling::uniform(cfg_.seed, 0, static_cast<uint64_t>(step_ * n_candidates_ + j));
        const int32_t idx = sampling::sample_from_probs(probs_, u);
        cands_.push_back({scores_[idx], idx / vocab, static_cast<int32_t>(idx % vocab), j});
        probs_[idx] = 0.0f;
        taken_[static_cast<size_t>(idx)] = 1;
      }
      if (static_cast<int64_t>(cands_.size()) < n_candidates_) {
        rest_.clear();
        for (int64_t i = 0; i < static_cast<int64_t>(scores_.size()); ++i)
          if (!taken_[static_cast<size_t>(i)]) rest_.push_back(i);
        const int64_t more = n_candidates_ - static_cast<int64_t>(cands_.size());
        std::partial_sort(rest_.begin(), rest_.begin() + more, rest_.end(),
                          [&](int64_t a, int64_t b) {
                            return scores_[a] > scores_[b] || (scores_[a] == scores_[b] && a < b);
                          });
        for (int64_t j = 0; j < more; ++j) {
          const int64_t drawn = static_cast<int64_t>(cands_.size());
          cands_.push_back(
              {scores_[rest_[j]], rest_[j] / vocab, static_cast<int32_t>(rest_[j] % vocab), drawn});
        }
      }
      // Stable by score: ties keep draw order. std::sort on (score, draw
      // order) gives that without std::stable_sort's temporary buffer.
      std::sort(cands_.begin(), cands_.end(), [](const Candidate& a, const Candidate& b) {
        return a.score > b.score || (a.score == b.score && a.drawn < b.drawn);
      });
    } else {
      std::iota(order_.begin(), order_.end(), 0);
      std::partial_sort(order_.begin(), order_.begin() + n_candidates_, order_.end(),
                        [&](int64_t a, int64_t b) {
                          return scores_[a] > scores_[b] || (scores_[a] == scores_[b] && a < b);
                        });
      for (int64_t j = 0; j < n_candidates_; ++j)
        cands_.push_back(
            {scores_[order_[j]], order_[j] / vocab, static_cast<int32_t>(order_[j] % vocab)});
    }
  }

  // Running beams join the hypotheses unless the search was done; KV freed.
  void finish() {
    if (finished_) return;
    finished_ = true;
    out_.decode.seconds =
        prefilled_ ? std::chrono::duration<double>(Clock::now() - t_decode_).count() : 0.0;
    if (!search_done_ && prefilled_) {
      for (const Beam& b : beams_)
        hyps_.add(b.seq.ids, b.score, static_cast<int64_t>(b.seq.ids.size()) - prompt_len_, -1);
    }
    for (Beam& b : beams_) b.seq.close(ctx_.engine->kv());
  }

  JobContext ctx_;
  const Tokenizer* tokenizer_;
  GenerateRequest req_;
  const sampling::GenerationConfig& cfg_;
  sampling::ProcessorChain chain_;
  int64_t nb_, vocab_, prompt_len_, max_length_, n_candidates_;
  bool full_copy_;
  BeamHypotheses hyps_;
  std::vector<Beam> beams_, fresh_;
  std::vector<float> scores_;
  sampling::ProcessorScratch scratch_;
  std::vector<Candidate> cands_, next_;
  std::vector<float> probs_;
  std::vector<char> taken_;
  std::vector<int64_t> rest_, order_;
  std::vector<char> claimed_;
  std::vector<const float*> rows_;
  GenerateResult out_;
  bool started_ = false, prefilled_ = false, finished_ = false, search_done_ = false;
  bool timed_out_ = false;
  std::string aborted_;
  int64_t cur_len_ = 0, step_ = 0;
  Clock::time_point start_, t0_, t_decode_;
};

}  // namespace

std::unique_ptr<Job> make_beam_job(const JobContext& ctx, const Tokenizer* tokenizer,
                                   const GenerateRequest& request) {
  return std::make_unique<BeamJob>(ctx, tokenizer, request);
}

}  // namespace nucleus
