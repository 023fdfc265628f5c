#include "sampling/processors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string_view>

#include "sampling/math.h"
#include "util/error.h"

namespace nucleus::sampling {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string fmt_ids(const TokenSeq& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ",";
    s += std::to_string(ids[i]);
  }
  s += "]";
  return s;
}

// Configured ids are checked against the row at apply time: the processors do
// not know the vocabulary size when they are built. Runs every step, so the
// message (who + what) is built only on failure.
void check_id(int32_t id, size_t vocab, std::string_view who, std::string_view what = {}) {
  if (id < 0 || static_cast<size_t>(id) >= vocab) {
    std::string msg = "sampling: ";
    msg += who;
    msg += what;
    msg += ": token id " + std::to_string(id);
    msg += " outside the vocabulary [0, " + std::to_string(vocab) + ")";
    throw Error(msg);
  }
}

void check_finite_positive(double v, const char* name) {
  check(std::isfinite(v) && v > 0.0,
        std::string("sampling: ") + name + "=" + fmt(v) + " must be finite and > 0");
}

void check_min_keep(int64_t min_keep) {
  check(min_keep >= 1,
        "sampling: min_tokens_to_keep=" + std::to_string(min_keep) + " must be >= 1");
}

// Does the sequence end with `prefix`?
bool ends_with(std::span<const int32_t> ids, std::span<const int32_t> prefix) {
  if (prefix.size() > ids.size()) return false;
  return std::equal(prefix.begin(), prefix.end(),
                    ids.end() - static_cast<std::ptrdiff_t>(prefix.size()));
}

// Threshold value for "always keep the min_keep best": torch.topk(x, k)[0][-1].
float keep_threshold(std::span<const float> logits, int64_t min_keep, std::vector<float>& work) {
  const int64_t k = std::min<int64_t>(min_keep, static_cast<int64_t>(logits.size()));
  return k >= 1 ? kth_largest(logits, k, work) : kNegInf;
}

using Scratch = ProcessorScratch;

// ---- processors --------------------------------------------------------

class SequenceBias final : public LogitsProcessor {
 public:
  SequenceBias(std::vector<std::pair<TokenSeq, double>> bias, std::string name)
      : bias_(std::move(bias)), name_(std::move(name)) {
    for (const auto& [seq, b] : bias_) {
      check(!seq.empty(), "sampling: " + name_ + ": empty token sequence");
      for (int32_t id : seq)
        check(id >= 0, "sampling: " + name_ + ": negative token id " + std::to_string(id));
      check(!std::isnan(b), "sampling: " + name_ + ": bias for " + fmt_ids(seq) + " is NaN");
    }
  }
  std::string name() const override { return name_; }
  std::string describe() const override {
    std::string s = name_ + "(";
    s += std::to_string(bias_.size());
    s += " sequences)";
    return s;
  }
  void apply(std::span<float> logits, const SequenceView& seq, Scratch& scratch) const override {
    // HF sums every applicable bias into a float32 row first, then adds it.
    const std::span<float> add = Scratch::take(scratch.f0, logits.size());
    std::fill(add.begin(), add.end(), 0.0f);
    for (const auto& [ids, b] : bias_) {
      for (int32_t id : ids) check_id(id, logits.size(), name_);
      if (ids.size() > 1) {
        // HF skips a sequence longer than the whole current sequence.
        if (static_cast<int64_t>(ids.size()) > seq.length()) continue;
        if (!ends_with(seq.ids, std::span<const int32_t>(ids.data(), ids.size() - 1))) continue;
      }
      add[ids.back()] += static_cast<float>(b);
    }
    for (size_t i = 0; i < logits.size(); ++i) logits[i] += add[i];
  }

 private:
  std::vector<std::pair<TokenSeq, double>> bias_;
  std::string name_;
};

class RepetitionPenalty final : public LogitsProcessor {
 public:
  explicit RepetitionPenalty(double p) : p_(p) { check_finite_positive(p, "repetition_penalty"); }
  std::string name() const override { return "repetition_penalty"; }
  std::string describe() const override { return "repetition_penalty(" + fmt(p_) + ")"; }
  void apply(std::span<float> logits, const SequenceView& seq, Scratch& scratch) const override {
    const float p = static_cast<float>(p_);
    const std::span<char> seen = Scratch::take(scratch.flags, logits.size());
    std::fill(seen.begin(), seen.end(), 0);
    for (int32_t id : seq.ids) {
      check_id(id, logits.size(), "repetition_penalty: sequence");
      if (seen[id]) continue;
      seen[id] = 1;
      const float v = logits[id];
      logits[id] = v < 0.0f ? v * p : v / p;
    }
  }

 private:
  double p_;
};

class LlamaPenalties final : public LogitsProcessor {
 public:
  LlamaPenalties(int64_t last_n, double repeat, double freq, double presence)
      : last_n_(last_n), repeat_(repeat), freq_(freq), presence_(presence) {
    check(last_n >= -1, "sampling: penalty_last_n=" + std::to_string(last_n) + " must be >= -1");
    check_finite_positive(repeat, "repetition_penalty");
    check(std::isfinite(freq), "sampling: frequency_penalty=" + fmt(freq) + " must be finite");
    check(std::isfinite(presence),
          "sampling: presence_penalty=" + fmt(presence) + " must be finite");
  }
  std::string name() const override { return "penalties"; }
  std::string describe() const override {
    return "penalties(last_n=" + std::to_string(last_n_) + ", repeat=" + fmt(repeat_) +
           ", frequency=" + fmt(freq_) + ", presence=" + fmt(presence_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView& seq, Scratch& scratch) const override {
    const int64_t len = seq.length();
    const int64_t n = last_n_ < 0 ? len : std::min(last_n_, len);
    const std::span<const int32_t> window = seq.ids.subspan(static_cast<size_t>(len - n));
    for (int32_t id : window) check_id(id, logits.size(), "penalties: sequence");
    // Occurrences per id in a vocabulary-wide counter; each distinct id is
    // penalised once, at its first occurrence, which resets its count.
    const std::span<int32_t> counts = Scratch::take(scratch.i0, logits.size());
    std::fill(counts.begin(), counts.end(), 0);
    for (int32_t id : window) ++counts[static_cast<size_t>(id)];
    const float r = static_cast<float>(repeat_);
    const float f = static_cast<float>(freq_);
    const float pr = static_cast<float>(presence_);
    for (int32_t id : window) {
      const int32_t c = counts[static_cast<size_t>(id)];
      if (c == 0) continue;
      counts[static_cast<size_t>(id)] = 0;
      float v = logits[id];
      // llama.cpp divides positive logits and multiplies the rest (0 included).
      v = v <= 0.0f ? v * r : v / r;
      v -= static_cast<float>(c) * f + pr;
      logits[id] = v;
    }
  }

 private:
  int64_t last_n_;
  double repeat_, freq_, presence_;
};

class NoRepeatNGram final : public LogitsProcessor {
 public:
  explicit NoRepeatNGram(int64_t n) : n_(n) {
    check(n >= 1, "sampling: no_repeat_ngram_size=" + std::to_string(n) + " must be >= 1");
  }
  std::string name() const override { return "no_repeat_ngram"; }
  std::string describe() const override { return "no_repeat_ngram(" + std::to_string(n_) + ")"; }
  void apply(std::span<float> logits, const SequenceView& seq, Scratch&) const override {
    const int64_t len = seq.length();
    if (len + 1 < n_) return;
    const auto ids = seq.ids;
    const size_t pre = static_cast<size_t>(n_ - 1);
    std::span<const int32_t> tail = ids.subspan(ids.size() - pre);
    for (size_t i = 0; i + pre < ids.size(); ++i) {
      if (std::equal(tail.begin(), tail.end(), ids.begin() + static_cast<std::ptrdiff_t>(i))) {
        const int32_t banned = ids[i + pre];
        check_id(banned, logits.size(), "no_repeat_ngram: sequence");
        logits[banned] = kNegInf;
      }
    }
  }

 private:
  int64_t n_;
};

class EosMask final : public LogitsProcessor {
 public:
  // absolute: HF min_length (total length); otherwise min_new_tokens.
  EosMask(int64_t minimum, TokenSeq eos, bool absolute)
      : min_(minimum), eos_(std::move(eos)), absolute_(absolute) {
    check(minimum >= 0, "sampling: " + name() + "=" + std::to_string(minimum) + " must be >= 0");
  }
  std::string name() const override { return absolute_ ? "min_length" : "min_new_tokens"; }
  std::string describe() const override {
    return name() + "(" + std::to_string(min_) + ", eos=" + fmt_ids(eos_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView& seq, Scratch&) const override {
    const int64_t have = absolute_ ? seq.length() : seq.generated();
    if (have >= min_) return;
    for (int32_t id : eos_) {
      check_id(id, logits.size(), absolute_ ? "min_length" : "min_new_tokens", ": eos_token_ids");
      logits[id] = kNegInf;
    }
  }

 private:
  int64_t min_;
  TokenSeq eos_;
  bool absolute_;
};

class ForcedEos final : public LogitsProcessor {
 public:
  ForcedEos(int64_t max_new, TokenSeq eos) : max_new_(max_new), eos_(std::move(eos)) {
    check(max_new >= 1, "sampling: forced_eos_token_id needs max_new_tokens >= 1, got " +
                            std::to_string(max_new));
    check(!eos_.empty(), "sampling: forced_eos_token_id: no token ids");
  }
  std::string name() const override { return "forced_eos"; }
  std::string describe() const override {
    return "forced_eos(" + fmt_ids(eos_) + " at new token " + std::to_string(max_new_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView& seq, Scratch&) const override {
    // HF fires when cur_len == max_length - 1, max_length = prompt + max_new_tokens.
    if (seq.generated() != max_new_ - 1) return;
    for (int32_t id : eos_) check_id(id, logits.size(), "forced_eos_token_id");
    std::fill(logits.begin(), logits.end(), kNegInf);
    for (int32_t id : eos_) logits[id] = 0.0f;
  }

 private:
  int64_t max_new_;
  TokenSeq eos_;
};

class SuppressTokens final : public LogitsProcessor {
 public:
  explicit SuppressTokens(TokenSeq ids) : ids_(std::move(ids)) {}
  std::string name() const override { return "suppress_tokens"; }
  std::string describe() const override { return "suppress_tokens(" + fmt_ids(ids_) + ")"; }
  void apply(std::span<float> logits, const SequenceView&, Scratch&) const override {
    for (int32_t id : ids_) {
      check_id(id, logits.size(), "suppress_tokens");
      logits[id] = kNegInf;
    }
  }

 private:
  TokenSeq ids_;
};

class Temperature final : public LogitsProcessor {
 public:
  explicit Temperature(double t) : t_(t) { check_finite_positive(t, "temperature"); }
  std::string name() const override { return "temperature"; }
  std::string describe() const override { return "temperature(" + fmt(t_) + ")"; }
  void apply(std::span<float> logits, const SequenceView&, Scratch&) const override {
    const float t = static_cast<float>(t_);
    for (float& v : logits) v /= t;
  }

 private:
  double t_;
};

class TopK final : public LogitsProcessor {
 public:
  TopK(int64_t k, int64_t min_keep) : k_(k), min_keep_(min_keep) {
    check(k >= 1, "sampling: top_k=" + std::to_string(k) +
                      " must be >= 1 (0 disables it in GenerationConfig)");
    check_min_keep(min_keep);
  }
  std::string name() const override { return "top_k"; }
  std::string describe() const override {
    return "top_k(k=" + std::to_string(k_) + ", min_keep=" + std::to_string(min_keep_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView&, Scratch& scratch) const override {
    if (logits.empty()) return;
    const int64_t k =
        std::min<int64_t>(std::max(k_, min_keep_), static_cast<int64_t>(logits.size()));
    // Everything strictly below the k-th largest goes: ties with it stay.
    const float kth = kth_largest(logits, k, scratch.f0);
    for (float& v : logits) {
      if (v < kth) v = kNegInf;
    }
  }

 private:
  int64_t k_, min_keep_;
};

class TopP final : public LogitsProcessor {
 public:
  TopP(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {
    check(std::isfinite(p) && p > 0.0 && p <= 1.0, "sampling: top_p=" + fmt(p) + " outside (0, 1]");
    check_min_keep(min_keep);
  }
  std::string name() const override { return "top_p"; }
  std::string describe() const override {
    return "top_p(p=" + fmt(p_) + ", min_keep=" + std::to_string(min_keep_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView&, Scratch& scratch) const override {
    // HF: sort ascending (stable), cumsum of the softmax, remove where the
    // cumsum <= 1 - top_p, keep the last min_keep. Removed ids (-inf) sort
    // first with probability 0 and add exactly 0 to every cumsum, so only
    // survivors are considered. A stable sort by value equals a sort by
    // (value, id), which lets the work be split below.
    using Cand = Scratch::Cand;
    auto less = [](const Cand& a, const Cand& b) {
      return a.v < b.v || (a.v == b.v && a.id < b.id);
    };
    const std::span<Cand> all = Scratch::take(scratch.cands, logits.size());
    size_t n = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (logits[i] != kNegInf) all[n++] = {logits[i], static_cast<int32_t>(i)};
    }
    if (n == 0) return;
    const std::span<Cand> c = all.first(n);
    const std::span<float> vals = Scratch::take(scratch.f0, n);
    for (size_t i = 0; i < n; ++i) vals[i] = c[i].v;
    softmax(vals, vals);
    const std::span<float> prob_of = Scratch::take(scratch.f1, logits.size());
    std::fill(prob_of.begin(), prob_of.end(), 0.0f);
    for (size_t i = 0; i < n; ++i) prob_of[c[i].id] = vals[i];
    // 1 - top_p is computed in double (Python) and meets the float32 tensor.
    const float threshold = static_cast<float>(1.0 - p_);
    const size_t min_keep = std::min<size_t>(n, static_cast<size_t>(min_keep_));

    // Large rows: sort only the best m. If the cumsum over everything below
    // them (their total, every partial sum being no larger) already rounds to
    // <= threshold, all of those are removed and the rest of the cumsum only
    // needs the sorted top. Otherwise try a larger m, finally the whole row.
    size_t m = n <= 4096 ? n : 1024;
    for (;;) {
      if (m < n && m < min_keep) m = n;
      const size_t rest = n - m;
      if (rest > 0)
        std::nth_element(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(rest), c.end(), less);
      double acc = 0.0;
      for (size_t i = 0; i < rest; ++i) acc += prob_of[c[i].id];
      if (rest > 0 && static_cast<float>(acc) > threshold) {
        m = std::min(n, m * 8);
        continue;
      }
      std::sort(c.begin() + static_cast<std::ptrdiff_t>(rest), c.end(), less);
      for (size_t i = 0; i < rest; ++i) logits[c[i].id] = kNegInf;
      const size_t keep_from = n - min_keep;
      for (size_t i = rest; i < keep_from; ++i) {
        acc += prob_of[c[i].id];
        if (static_cast<float>(acc) <= threshold) logits[c[i].id] = kNegInf;
      }
      return;
    }
  }

 private:
  double p_;
  int64_t min_keep_;
};

class MinP final : public LogitsProcessor {
 public:
  MinP(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {
    check(std::isfinite(p) && p >= 0.0 && p <= 1.0,
          "sampling: min_p=" + fmt(p) + " outside [0, 1]");
    check_min_keep(min_keep);
  }
  std::string name() const override { return "min_p"; }
  std::string describe() const override {
    return "min_p(p=" + fmt(p_) + ", min_keep=" + std::to_string(min_keep_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView&, Scratch& scratch) const override {
    if (logits.empty()) return;
    const std::span<float> probs = Scratch::take(scratch.f1, logits.size());
    softmax(logits, probs);
    const float top = *std::max_element(probs.begin(), probs.end());
    const float scaled = static_cast<float>(p_) * top;
    const float keep = keep_threshold(logits, min_keep_, scratch.f0);
    for (size_t i = 0; i < logits.size(); ++i) {
      if (probs[i] < scaled && logits[i] < keep) logits[i] = kNegInf;
    }
  }

 private:
  double p_;
  int64_t min_keep_;
};

class TypicalP final : public LogitsProcessor {
 public:
  TypicalP(double p, int64_t min_keep) : p_(p), min_keep_(min_keep) {
    check(std::isfinite(p) && p > 0.0 && p <= 1.0,
          "sampling: typical_p=" + fmt(p) + " outside (0, 1]");
    check_min_keep(min_keep);
  }
  std::string name() const override { return "typical_p"; }
  std::string describe() const override {
    return "typical_p(p=" + fmt(p_) + ", min_keep=" + std::to_string(min_keep_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView&, Scratch& scratch) const override {
    const size_t n = logits.size();
    if (n == 0) return;
    const std::span<float> logp = Scratch::take(scratch.f0, n);
    log_softmax(logits, logp);
    // Entropy as torch.nansum: -inf * 0 terms are NaN and are skipped.
    double ent_sum = 0.0;
    for (float lp : logp) {
      const float term = lp * std::exp(lp);
      if (!std::isnan(term)) ent_sum += term;
    }
    const float ent = -static_cast<float>(ent_sum);
    // HF argsorts |-logp - entropy| ascending (stable). Sorting (value, id)
    // pairs gives the same order (equal values by id, NaN last) and, being
    // contiguous, runs about twice as fast as sorting indices.
    const std::span<Scratch::Cand> by_shift = Scratch::take(scratch.cands, n);
    for (size_t i = 0; i < n; ++i)
      by_shift[i] = {std::fabs(-logp[i] - ent), static_cast<int32_t>(i)};
    std::sort(by_shift.begin(), by_shift.end(), [](const Scratch::Cand& a, const Scratch::Cand& b) {
      const bool na = std::isnan(a.v), nb = std::isnan(b.v);
      if (na || nb) return na == nb ? a.id < b.id : nb;
      return a.v < b.v || (a.v == b.v && a.id < b.id);
    });
    const std::span<float> sorted_logits = Scratch::take(scratch.f2, n);
    for (size_t i = 0; i < n; ++i) sorted_logits[i] = logits[by_shift[i].id];
    // logp is no longer needed: its buffer takes the probabilities, and the
    // sorted logits' buffer the cumulative sum.
    const std::span<float> probs = logp;
    softmax(sorted_logits, probs);
    const std::span<float> cum = sorted_logits;
    cumsum(probs, cum);
    const float mass = static_cast<float>(p_);
    size_t last = 0;
    for (float c : cum) last += c < mass ? 1 : 0;
    last = std::min(last, n - 1);
    const float limit = by_shift[last].v;
    const size_t keep = std::min<size_t>(n, static_cast<size_t>(min_keep_));
    for (size_t j = keep; j < n; ++j) {
      if (by_shift[j].v > limit) logits[by_shift[j].id] = kNegInf;
    }
  }

 private:
  double p_;
  int64_t min_keep_;
};

class EpsilonCutoff final : public LogitsProcessor {
 public:
  EpsilonCutoff(double e, int64_t min_keep) : e_(e), min_keep_(min_keep) {
    check(std::isfinite(e) && e > 0.0 && e < 1.0,
          "sampling: epsilon_cutoff=" + fmt(e) + " outside (0, 1)");
    check_min_keep(min_keep);
  }
  std::string name() const override { return "epsilon_cutoff"; }
  std::string describe() const override {
    return "epsilon_cutoff(" + fmt(e_) + ", min_keep=" + std::to_string(min_keep_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView&, Scratch& scratch) const override {
    if (logits.empty()) return;
    const std::span<float> probs = Scratch::take(scratch.f1, logits.size());
    softmax(logits, probs);
    const float eps = static_cast<float>(e_);
    const float keep = keep_threshold(logits, min_keep_, scratch.f0);
    for (size_t i = 0; i < logits.size(); ++i) {
      if (probs[i] < eps && logits[i] < keep) logits[i] = kNegInf;
    }
  }

 private:
  double e_;
  int64_t min_keep_;
};

class EtaCutoff final : public LogitsProcessor {
 public:
  EtaCutoff(double e, int64_t min_keep) : e_(e), min_keep_(min_keep) {
    check(std::isfinite(e) && e > 0.0 && e < 1.0,
          "sampling: eta_cutoff=" + fmt(e) + " outside (0, 1)");
    check_min_keep(min_keep);
  }
  std::string name() const override { return "eta_cutoff"; }
  std::string describe() const override {
    return "eta_cutoff(" + fmt(e_) + ", min_keep=" + std::to_string(min_keep_) + ")";
  }
  void apply(std::span<float> logits, const SequenceView&, Scratch& scratch) const override {
    if (logits.empty()) return;
    const std::span<float> probs = Scratch::take(scratch.f1, logits.size());
    softmax(logits, probs);
    // Entropy as torch.distributions.Categorical: normalised logits clamped to
    // the lowest float so that removed tokens contribute 0 * finite = 0.
    const std::span<float> logp = Scratch::take(scratch.f2, logits.size());
    log_softmax(logits, logp);
    double ent_sum = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const float lp = std::max(logp[i], std::numeric_limits<float>::lowest());
      ent_sum += lp * probs[i];
    }
    const float entropy = -static_cast<float>(ent_sum);
    const float eps = static_cast<float>(e_);
    const float eta = std::min(eps, std::sqrt(eps) * std::exp(-entropy));
    const float keep = keep_threshold(logits, min_keep_, scratch.f0);
    for (size_t i = 0; i < logits.size(); ++i) {
      if (probs[i] < eta && logits[i] < keep) logits[i] = kNegInf;
    }
  }

 private:
  double e_;
  int64_t min_keep_;
};

}  // namespace

std::unique_ptr<LogitsProcessor> make_sequence_bias(std::vector<std::pair<TokenSeq, double>> bias) {
  return std::make_unique<SequenceBias>(std::move(bias), "sequence_bias");
}

std::unique_ptr<LogitsProcessor> make_repetition_penalty(double penalty) {
  return std::make_unique<RepetitionPenalty>(penalty);
}

std::unique_ptr<LogitsProcessor> make_llama_penalties(int64_t last_n, double repeat,
                                                      double frequency, double presence) {
  return std::make_unique<LlamaPenalties>(last_n, repeat, frequency, presence);
}

std::unique_ptr<LogitsProcessor> make_no_repeat_ngram(int64_t n) {
  return std::make_unique<NoRepeatNGram>(n);
}

std::unique_ptr<LogitsProcessor> make_bad_words(std::vector<TokenSeq> bad_words,
                                                const TokenSeq& eos_ids) {
  std::vector<std::pair<TokenSeq, double>> bias;
  for (auto& seq : bad_words) {
    check(!seq.empty(), "sampling: bad_words_ids: empty token sequence");
    // HF drops a bad word that is exactly one EOS id: EOS is never banned this way.
    if (seq.size() == 1 && std::find(eos_ids.begin(), eos_ids.end(), seq[0]) != eos_ids.end())
      continue;
    bias.emplace_back(std::move(seq), -std::numeric_limits<double>::infinity());
  }
  return std::make_unique<SequenceBias>(std::move(bias), "bad_words");
}

std::unique_ptr<LogitsProcessor> make_min_length(int64_t min_length, TokenSeq eos_ids) {
  return std::make_unique<EosMask>(min_length, std::move(eos_ids), true);
}

std::unique_ptr<LogitsProcessor> make_min_new_tokens(int64_t min_new_tokens, TokenSeq eos_ids) {
  return std::make_unique<EosMask>(min_new_tokens, std::move(eos_ids), false);
}

std::unique_ptr<LogitsProcessor> make_forced_eos(int64_t max_new_tokens, TokenSeq eos_ids) {
  return std::make_unique<ForcedEos>(max_new_tokens, std::move(eos_ids));
}

std::unique_ptr<LogitsProcessor> make_suppress_tokens(TokenSeq ids) {
  return std::make_unique<SuppressTokens>(std::move(ids));
}

std::unique_ptr<LogitsProcessor> make_temperature(double t) {
  return std::make_unique<Temperature>(t);
}
std::unique_ptr<LogitsProcessor> make_top_k(int64_t k, int64_t min_keep) {
  return std::make_unique<TopK>(k, min_keep);
}
std::unique_ptr<LogitsProcessor> make_top_p(double p, int64_t min_keep) {
  return std::make_unique<TopP>(p, min_keep);
}
std::unique_ptr<LogitsProcessor> make_min_p(double p, int64_t min_keep) {
  return std::make_unique<MinP>(p, min_keep);
}
std::unique_ptr<LogitsProcessor> make_typical_p(double p, int64_t min_keep) {
  return std::make_unique<TypicalP>(p, min_keep);
}
std::unique_ptr<LogitsProcessor> make_epsilon_cutoff(double epsilon, int64_t min_keep) {
  return std::make_unique<EpsilonCutoff>(epsilon, min_keep);
}
std::unique_ptr<LogitsProcessor> make_eta_cutoff(double epsilon, int64_t min_keep) {
  return std::make_unique<EtaCutoff>(epsilon, min_keep);
}

}  // namespace nucleus::sampling
