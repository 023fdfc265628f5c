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

}  // namespace nucleus
