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
// of p simply continues p's sequence. Nothing else is copied.
#include "generate/beam_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "sampling/math.h"
#include "sampling/select.h"
#include "util/error.h"

namespace nucleus {
namespace {

using Clock = std::chrono::steady_clock;

struct Hypothesis {
  std::vector<int32_t> ids;  // prompt + generated, without a final EOS
  double score = 0.0;
  bool eos = false;
};

// HF BeamHypotheses: keeps the num_beams best finished hypotheses.
class Hypotheses {
 public:
  Hypotheses(int64_t num_beams, double length_penalty, sampling::EarlyStopping early,
             int64_t max_length)
      : num_beams_(num_beams), lp_(length_penalty), early_(early), max_length_(max_length) {}

  void add(std::vector<int32_t> ids, double sum_logprobs, int64_t generated_len, bool eos) {
    const double score = sum_logprobs / std::pow(static_cast<double>(generated_len), lp_);
    if (static_cast<int64_t>(hyps_.size()) < num_beams_ || score > worst_) {
      hyps_.push_back({std::move(ids), score, eos});
      if (static_cast<int64_t>(hyps_.size()) > num_beams_) {
        auto worst = std::min_element(hyps_.begin(), hyps_.end(),
                                      [](const Hypothesis& a, const Hypothesis& b) {
                                        return a.score < b.score;
                                      });
        hyps_.erase(worst);
      }
      worst_ = std::min_element(hyps_.begin(), hyps_.end(),
                                [](const Hypothesis& a, const Hypothesis& b) {
                                  return a.score < b.score;
                                })->score;
    } else {
      worst_ = std::min(score, worst_);
    }
  }

  // HF is_done: can no running beam beat the worst kept hypothesis?
  bool is_done(double best_sum_logprobs, int64_t cur_len, int64_t prompt_len) const {
    if (static_cast<int64_t>(hyps_.size()) < num_beams_) return false;
    if (early_ == sampling::EarlyStopping::True) return true;
    double highest;
    if (early_ == sampling::EarlyStopping::False) {
      highest = best_sum_logprobs / std::pow(static_cast<double>(cur_len - prompt_len), lp_);
    } else if (lp_ > 0.0) {
      highest = best_sum_logprobs / std::pow(static_cast<double>(max_length_ - prompt_len), lp_);
    } else {
      highest = best_sum_logprobs / std::pow(static_cast<double>(cur_len - prompt_len), lp_);
    }
    return worst_ >= highest;
  }

  std::vector<Hypothesis>& all() { return hyps_; }

 private:
  int64_t num_beams_;
  double lp_;
  sampling::EarlyStopping early_;
  int64_t max_length_;
  std::vector<Hypothesis> hyps_;
  double worst_ = 1e9;
};

struct Beam {
  int32_t kv = -1;
  std::vector<int32_t> ids;
  float score = 0.0f;  // running sum of processed log-probs (float32, as HF)
};

struct Candidate {
  float score;
  int64_t beam;
  int32_t token;
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
  KvCache& kv = engine.kv();

  GenerateResult out;
  out.chain = chain.describe();
  std::vector<float> logits;
  engine.reset_counters();
  auto t0 = Clock::now();
  const int32_t root = kv.create();
  if (req.kv_cache) {
    engine.prefill(root, req.prompt, logits);
  } else {
    engine.prefill(root, req.prompt, logits);
    kv.truncate(root, 0);
  }
  out.prefill.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.prefill.tokens = prompt_len;
  out.prefill.counters = engine.counters();

  // HF starts num_beams copies of the prompt; all but the first at -1e9 so the
  // first step expands only one of them.
  std::vector<Beam> beams(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b) {
    beams[b].kv = b == 0 ? root : kv.fork(root);
    beams[b].ids = req.prompt;
    beams[b].score = b == 0 ? 0.0f : -1e9f;
  }
  std::vector<float> rows(static_cast<size_t>(nb * vocab));
  for (int64_t b = 0; b < nb; ++b) std::copy(logits.begin(), logits.end(), rows.begin() + b * vocab);

  Hypotheses hyps(nb, cfg.length_penalty, cfg.early_stopping, max_length);
  bool done = false;
  engine.reset_counters();
  t0 = Clock::now();
  std::vector<float> scores(static_cast<size_t>(nb * vocab));
  std::vector<Candidate> cands;
  Batch batch;
  int64_t step = 0;
  for (int64_t cur_len = prompt_len; cur_len < max_length && !done; ++cur_len, ++step) {
    for (int64_t b = 0; b < nb; ++b) {
      std::span<float> row(scores.data() + b * vocab, static_cast<size_t>(vocab));
      sampling::log_softmax(std::span<const float>(rows.data() + b * vocab, static_cast<size_t>(vocab)),
                            row);
      chain.apply(row, sampling::make_view(beams[b].ids, prompt_len));
      for (float& s : row) s += beams[b].score;
    }
    // Rank (or sample) candidates over all beams.
    cands.clear();
    if (cfg.sampling()) {
      std::vector<float> probs = sampling::softmax(scores);
      for (int64_t j = 0; j < n_candidates; ++j) {
        const double u = sampling::uniform(cfg.seed, 0, static_cast<uint64_t>(step * n_candidates + j));
        const int32_t idx = sampling::sample_from_probs(probs, u);
        cands.push_back({scores[idx], idx / vocab, static_cast<int32_t>(idx % vocab)});
        probs[idx] = 0.0f;  // without replacement
      }
      std::stable_sort(cands.begin(), cands.end(),
                       [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    } else {
      std::vector<int64_t> order(scores.size());
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + n_candidates, order.end(),
                        [&](int64_t a, int64_t b) {
                          return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
                        });
      for (int64_t j = 0; j < n_candidates; ++j)
        cands.push_back({scores[order[j]], order[j] / vocab, static_cast<int32_t>(order[j] % vocab)});
    }

    // Walk the candidates: finished hypotheses and the next beams.
    std::vector<Candidate> next;
    for (int64_t rank = 0; rank < n_candidates && static_cast<int64_t>(next.size()) < nb; ++rank) {
      const Candidate& c = cands[rank];
      if (!eos.empty() && is_eos(c.token)) {
        if (rank >= nb) continue;
        hyps.add(beams[c.beam].ids, c.score, cur_len + 1 - prompt_len, true);
      } else {
        next.push_back(c);
      }
    }
    check(static_cast<int64_t>(next.size()) == nb, "beam search: fewer candidates than beams");
    // HF judges "done" by the best of all ranked candidates, EOS ones included.
    float best = cands[0].score;
    for (const Candidate& c : cands) best = std::max(best, c.score);
    done = hyps.is_done(best, cur_len + 1, prompt_len);

    // New beams: the first child of a beam continues its sequence, later
    // children fork it (before anything is appended).
    std::vector<Beam> fresh(static_cast<size_t>(nb));
    std::vector<bool> claimed(static_cast<size_t>(nb), false);
    for (int64_t j = 0; j < nb; ++j) {
      const Beam& parent = beams[next[j].beam];
      fresh[j].ids = parent.ids;
      fresh[j].ids.push_back(next[j].token);
      fresh[j].score = next[j].score;
      if (!claimed[next[j].beam]) {
        claimed[next[j].beam] = true;
        fresh[j].kv = parent.kv;
      } else {
        fresh[j].kv = kv.fork(parent.kv);
      }
    }
    for (int64_t b = 0; b < nb; ++b)
      if (!claimed[b]) kv.release(beams[b].kv);
    beams = std::move(fresh);
    if (done || cur_len + 1 >= max_length) break;

    batch.clear();
    if (req.kv_cache) {
      for (const Beam& b : beams) batch.add(b.kv, b.ids.back(), true);
      engine.forward(batch, rows);
    } else {
      for (int64_t b = 0; b < nb; ++b) {
        const int32_t tmp = kv.create();
        engine.prefill(tmp, beams[b].ids, logits);
        kv.release(tmp);
        std::copy(logits.begin(), logits.end(), rows.begin() + b * vocab);
      }
    }
  }
  out.decode.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.decode.counters = engine.counters();
  out.decode.tokens = step * nb;

  // Finalize: running beams join the hypotheses unless the search was done.
  if (!done) {
    for (const Beam& b : beams)
      hyps.add(b.ids, b.score, static_cast<int64_t>(b.ids.size()) - prompt_len, false);
  }
  for (const Beam& b : beams) kv.release(b.kv);

  std::vector<Hypothesis>& all = hyps.all();
  std::stable_sort(all.begin(), all.end(),
                   [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  const int64_t n_ret = std::min<int64_t>(cfg.num_return_sequences, static_cast<int64_t>(all.size()));
  size_t longest = 0;
  for (int64_t i = 0; i < n_ret; ++i) longest = std::max(longest, all[i].ids.size());
  const size_t out_len = std::min<size_t>(longest + 1, static_cast<size_t>(max_length));
  for (int64_t i = 0; i < n_ret; ++i) {
    SequenceResult r;
    r.tokens.assign(all[i].ids.begin() + prompt_len, all[i].ids.end());
    // HF closes every returned sequence shorter than the output width with EOS.
    if (all[i].ids.size() < out_len && !eos.empty()) r.tokens.push_back(eos[0]);
    r.score = all[i].score;
    r.stop_reason = all[i].eos ? "eos" : "length";
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
