#pragma once
// Beam search with Hugging Face generate() semantics on the shared KV cache:
// beams fork from the prompt's blocks and from each other, so a step costs
// num_beams decode rows and never a copy of the cache. The search itself is a
// Job (generate/beam_job.cpp); this header keeps its hypothesis store.
#include <cstdint>
#include <vector>

#include "generate/generator.h"

namespace nucleus {

// A finished hypothesis: the ids (prompt + generated) without the EOS that
// ended it, and its score sum_logprobs / generated_len^length_penalty.
struct BeamHypothesis {
  std::vector<int32_t> ids;
  double score = 0.0;
  int32_t eos_token = -1;  // the EOS id that ended it; -1 for a running beam
};

// transformers 4.40 BeamHypotheses: keeps the num_beams best hypotheses and
// decides when no running beam can improve on them.
class BeamHypotheses {
 public:
  BeamHypotheses(int64_t num_beams, double length_penalty, sampling::EarlyStopping early,
                 int64_t max_length)
      : num_beams_(num_beams), lp_(length_penalty), early_(early), max_length_(max_length) {}

  // generated_len counts the tokens after the prompt, the ending EOS included.
  void add(std::vector<int32_t> ids, double sum_logprobs, int64_t generated_len, int32_t eos_token);
  // Can no running beam beat the worst kept hypothesis? best_sum_logprobs is
  // the best candidate score of the step; cur_len the length (prompt
  // included) those scores were computed for.
  bool is_done(double best_sum_logprobs, int64_t cur_len, int64_t prompt_len) const;

  int64_t size() const { return static_cast<int64_t>(hyps_.size()); }
  double worst_score() const { return worst_; }
  // Best first; among equal scores the later-added first (HF pops the end of
  // a stable ascending sort).
  std::vector<BeamHypothesis> sorted() const;

 private:
  int64_t num_beams_;
  double lp_;
  sampling::EarlyStopping early_;
  int64_t max_length_;
  std::vector<BeamHypothesis> hyps_;
  double worst_ = 1e9;
};

}  // namespace nucleus
