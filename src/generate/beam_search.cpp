// Beam search as transformers 4.40 defines it (BeamSearchScorer and
// BeamHypotheses), run on the paged KV cache.
//
// Per step, for every live beam b with running score S_b:
//   scores = chain(log_softmax(logits_b)) + S_b       (processors see log-probs)
// All num_beams × vocab scores are ranked together; the best 2·num_beams
// candidates (times more with several EOS ids) are walked in order: an EOS
// candidate ranked within the first num_beams becomes a finished hypothesis
// (stored without its EOS, scored sum_logprobs / generated_len^length_penalty
// with generated_len counting the EOS), any other candidate becomes a beam of
// the next step until num_beams are chosen. Under sampling the candidates are
// drawn without replacement from softmax(scores) instead of taken by rank,
// then sorted by score.
//
// KV: a new beam that extends beam p forks p's sequence (shares every block;
// the first write copies only the partly filled last block); the first child
// of p simply continues p's sequence. Nothing else is copied. (With
// GenerateRequest::beam_full_copy every new beam instead gets a private copy
// of its parent's whole cache each step, to measure what sharing saves.)
//
// Output, as HF returns it: the best num_return_sequences hypotheses; one that
// ended with EOS carries that EOS as its last token (HF writes eos_token_id[0]
// there, the same id whenever there is one EOS id).
#include "generate/beam_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "sampling/math.h"
#include "sampling/select.h"
#include "util/error.h"

namespace nucleus {

void BeamHypotheses::add(std::vector<int32_t> ids, double sum_logprobs, int64_t generated_len,
                         int32_t eos_token) {
  const double score = sum_logprobs / std::pow(static_cast<double>(generated_len), lp_);
  if (size() < num_beams_ || score > worst_) {
    hyps_.push_back({std::move(ids), score, eos_token});
    const auto by_score = [](const BeamHypothesis& a, const BeamHypothesis& b) {
      return a.score < b.score;
    };
    if (size() > num_beams_) {
      // The first of equal worst scores goes, as HF's sort of (score, index) does.
      hyps_.erase(std::min_element(hyps_.begin(), hyps_.end(), by_score));
      worst_ = std::min_element(hyps_.begin(), hyps_.end(), by_score)->score;
    } else {
      worst_ = std::min(score, worst_);
    }
  }
  // A rejected hypothesis leaves the worst kept score alone (lowering it would
  // keep is_done() false for too long).
}

bool BeamHypotheses::is_done(double best_sum_logprobs, int64_t cur_len, int64_t prompt_len) const {
  if (size() < num_beams_) return false;
  if (early_ == sampling::EarlyStopping::True) return true;
  // The best score a running beam could still reach: "false" assumes it stops
  // now; "never" takes the most favourable length (max_length when the
  // penalty rewards length, else now).
  int64_t len = cur_len - prompt_len;
  if (early_ == sampling::EarlyStopping::Never && lp_ > 0.0) len = max_length_ - prompt_len;
  const double highest = best_sum_logprobs / std::pow(static_cast<double>(len), lp_);
  return worst_ >= highest;
}

std::vector<BeamHypothesis> BeamHypotheses::sorted() const {
  std::vector<BeamHypothesis> out = hyps_;
  std::stable_sort(out.begin(), out.end(), [](const BeamHypothesis& a, const BeamHypothesis& b) {
    return a.score < b.score;
  });
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

struct Beam {
  int32_t kv = -1;
  std::vector<int32_t> ids;
  float score = 0.0f;  // running sum of processed log-probs (float32, as HF)
};

struct Candidate {
  float score;
  int64_t beam;
  int32_t token;
  int64_t drawn = 0;  // draw order under sampling: the tie-break among equal scores
};

}  // namespace

GenerateResult beam_search(Engine& engine, const Tokenizer* tokenizer, const GenerateRequest& req) {
  const sampling::GenerationConfig& cfg = req.config;
  check(cfg.stop_strings.empty(), "stop strings are not supported with beam search");
  const sampling::ProcessorChain chain = sampling::build_chain(cfg);
  const int64_t nb = cfg.num_beams;
  const int64_t vocab = engine.vocab_size();
  const int64_t prompt_len = static_cast<int64_t>(req.prompt.size());
  const int64_t max_length = prompt_len + *cfg.max_new_tokens;
  const auto& eos = cfg.eos_token_ids;
  const auto is_eos = [&](int32_t t) { return std::find(eos.begin(), eos.end(), t) != eos.end(); };
  const int64_t n_candidates = std::max<int64_t>(2, 1 + static_cast<int64_t>(eos.size())) * nb;
  check(n_candidates <= nb * vocab, "beam search: num_beams=" + std::to_string(nb) +
                                        " needs more candidates than the vocabulary has");
  const bool full_copy = req.beam_full_copy && req.kv_cache;
  KvCache& kv = engine.kv();
  const auto start = Clock::now();

  GenerateResult out;
  out.chain = chain.describe();
  out.kv_bytes_per_block = kv.memory().bytes_per_block;
  const auto note_peak = [&] {
    out.kv_peak_blocks = std::max(out.kv_peak_blocks, kv.memory().blocks_used);
  };
  std::vector<float> logits;
  engine.reset_counters();
  auto t0 = Clock::now();
  const int32_t root = kv.create();
  engine.prefill(root, req.prompt, logits);
  if (!req.kv_cache) kv.truncate(root, 0);
  note_peak();
  out.prefill.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.prefill.tokens = prompt_len;
  out.prefill.counters = engine.counters();

  // HF starts num_beams copies of the prompt; all but the first at -1e9 so the
  // first step expands only one of them.
  // Two generations of beams, swapped each step; ids have room for every
  // token, so building the next beams copies ids without allocating.
  std::vector<Beam> beams(static_cast<size_t>(nb)), fresh(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b) {
    beams[b].ids.reserve(static_cast<size_t>(max_length));
    fresh[b].ids.reserve(static_cast<size_t>(max_length));
    beams[b].kv = b == 0 ? root : full_copy ? kv.clone(root) : kv.fork(root);
    beams[b].ids = req.prompt;
    beams[b].score = b == 0 ? 0.0f : -1e9f;
  }
  note_peak();
  std::vector<float> rows(static_cast<size_t>(nb * vocab));
  for (int64_t b = 0; b < nb; ++b)
    std::copy(logits.begin(), logits.end(), rows.begin() + b * vocab);

  BeamHypotheses hyps(nb, cfg.length_penalty, cfg.early_stopping, max_length);
  bool done = false;
  bool timed_out = false;
  engine.reset_counters();
  t0 = Clock::now();
  // Per-step buffers, allocated once (scratch grows during the first step).
  std::vector<float> scores(static_cast<size_t>(nb * vocab));
  sampling::ProcessorScratch scratch;
  std::vector<Candidate> cands, next;
  cands.reserve(static_cast<size_t>(n_candidates));
  next.reserve(static_cast<size_t>(nb));
  std::vector<float> probs;  // sampling only
  std::vector<char> taken;
  std::vector<int64_t> rest;
  std::vector<int64_t> order;  // ranking only
  if (cfg.sampling()) {
    probs.resize(scores.size());
    taken.resize(scores.size());
    rest.reserve(scores.size());
  } else {
    order.resize(scores.size());
  }
  std::vector<char> claimed(static_cast<size_t>(nb));
  Batch batch;
  batch.rows.reserve(static_cast<size_t>(nb));
  int64_t step = 0;
  for (int64_t cur_len = prompt_len; cur_len < max_length; ++cur_len, ++step) {
    for (int64_t b = 0; b < nb; ++b) {
      std::span<float> row(scores.data() + b * vocab, static_cast<size_t>(vocab));
      sampling::log_softmax(
          std::span<const float>(rows.data() + b * vocab, static_cast<size_t>(vocab)), row);
      chain.apply(row, sampling::make_view(beams[b].ids, prompt_len), scratch);
      for (float& s : row) s += beams[b].score;
    }
    // Rank (or sample) candidates over all beams.
    cands.clear();
    if (cfg.sampling()) {
      // Drawn without replacement while any probability is left; float32
      // softmax over num_beams × vocab can leave fewer positive entries than
      // candidates (a confident beam underflows the rest), and then the best
      // remaining scores fill up, as the greedy ranking would take them.
      sampling::softmax(scores, probs);
      std::fill(taken.begin(), taken.end(), 0);
      int64_t positive =
          std::count_if(probs.begin(), probs.end(), [](float p) { return p > 0.0f; });
      for (int64_t j = 0; j < n_candidates && positive > 0; ++j, --positive) {
        const double u =
            sampling::uniform(cfg.seed, 0, static_cast<uint64_t>(step * n_candidates + j));
        const int32_t idx = sampling::sample_from_probs(probs, u);
        cands.push_back({scores[idx], idx / vocab, static_cast<int32_t>(idx % vocab), j});
        probs[idx] = 0.0f;
        taken[static_cast<size_t>(idx)] = 1;
      }
      if (static_cast<int64_t>(cands.size()) < n_candidates) {
        rest.clear();
        for (int64_t i = 0; i < static_cast<int64_t>(scores.size()); ++i)
          if (!taken[static_cast<size_t>(i)]) rest.push_back(i);
        const int64_t more = n_candidates - static_cast<int64_t>(cands.size());
        std::partial_sort(rest.begin(), rest.begin() + more, rest.end(), [&](int64_t a, int64_t b) {
          return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
        });
        for (int64_t j = 0; j < more; ++j) {
          const int64_t drawn = static_cast<int64_t>(cands.size());
          cands.push_back(
              {scores[rest[j]], rest[j] / vocab, static_cast<int32_t>(rest[j] % vocab), drawn});
        }
      }
      // Stable by score: ties keep draw order. std::sort on (score, draw
      // order) gives that without std::stable_sort's temporary buffer.
      std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
        return a.score > b.score || (a.score == b.score && a.drawn < b.drawn);
      });
    } else {
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + n_candidates, order.end(),
                        [&](int64_t a, int64_t b) {
                          return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
                        });
      for (int64_t j = 0; j < n_candidates; ++j)
        cands.push_back(
            {scores[order[j]], order[j] / vocab, static_cast<int32_t>(order[j] % vocab)});
    }

    // Walk the candidates: finished hypotheses and the next beams.
    next.clear();
    for (int64_t rank = 0; rank < n_candidates && static_cast<int64_t>(next.size()) < nb; ++rank) {
      const Candidate& c = cands[rank];
      if (is_eos(c.token)) {
        if (rank >= nb) continue;
        hyps.add(beams[c.beam].ids, c.score, cur_len + 1 - prompt_len, c.token);
      } else {
        next.push_back(c);
      }
    }
    check(static_cast<int64_t>(next.size()) == nb, "beam search: fewer candidates than beams");
    // HF judges "done" by the best of all ranked candidates, EOS ones included.
    done = hyps.is_done(cands[0].score, cur_len + 1, prompt_len);

    // New beams: the first child of a beam continues its sequence, later
    // children fork it (before anything is appended).
    std::fill(claimed.begin(), claimed.end(), 0);
    for (int64_t j = 0; j < nb; ++j) {
      const Beam& parent = beams[next[j].beam];
      fresh[j].ids.assign(parent.ids.begin(), parent.ids.end());
      fresh[j].ids.push_back(next[j].token);
      fresh[j].score = next[j].score;
      if (full_copy) {
        fresh[j].kv = kv.clone(parent.kv);
      } else if (!claimed[next[j].beam]) {
        claimed[next[j].beam] = 1;
        fresh[j].kv = parent.kv;
      } else {
        fresh[j].kv = kv.fork(parent.kv);
      }
    }
    note_peak();
    for (int64_t b = 0; b < nb; ++b)
      if (!claimed[b]) kv.release(beams[b].kv);
    std::swap(beams, fresh);
    if (done || cur_len + 1 >= max_length) break;
    if (cfg.max_time &&
        std::chrono::duration<double>(Clock::now() - start).count() >= *cfg.max_time) {
      timed_out = true;
      break;
    }

    if (req.kv_cache) {
      batch.clear();
      for (const Beam& b : beams) batch.add(b.kv, b.ids.back(), true);
      engine.forward(batch, rows);
    } else {
      for (int64_t b = 0; b < nb; ++b) {
        const int32_t tmp = kv.create();
        engine.prefill(tmp, beams[b].ids, logits);
        note_peak();
        kv.release(tmp);
        std::copy(logits.begin(), logits.end(), rows.begin() + b * vocab);
      }
    }
    note_peak();
    out.decode.tokens += nb;
  }
  out.decode.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.decode.counters = engine.counters();

  // Finalize: running beams join the hypotheses unless the search was done.
  if (!done) {
    for (const Beam& b : beams)
      hyps.add(b.ids, b.score, static_cast<int64_t>(b.ids.size()) - prompt_len, -1);
  }
  for (const Beam& b : beams) kv.release(b.kv);

  const std::vector<BeamHypothesis> best = hyps.sorted();
  const int64_t n_ret =
      std::min<int64_t>(cfg.num_return_sequences, static_cast<int64_t>(best.size()));
  for (int64_t i = 0; i < n_ret; ++i) {
    const BeamHypothesis& h = best[static_cast<size_t>(i)];
    SequenceResult r;
    r.tokens.assign(h.ids.begin() + prompt_len, h.ids.end());
    if (h.eos_token >= 0) r.tokens.push_back(h.eos_token);
    r.score = h.score;
    r.stop_reason = h.eos_token >= 0 ? "eos" : timed_out ? "time" : "length";
    if (tokenizer != nullptr) {
      StreamingDetokenizer detok(*tokenizer, req.prompt.back());
      for (int32_t t : r.tokens) r.text += detok.push(t);
      r.text += detok.flush();
    }
    out.sequences.push_back(std::move(r));
  }
  return out;
}

}  // namespace nucleus
