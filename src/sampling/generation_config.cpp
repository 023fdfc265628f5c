#include "sampling/generation_config.h"

#include <cmath>
#include <sstream>

#include "sampling/processors.h"
#include "util/error.h"

namespace nucleus::sampling {

namespace {

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Every message has the same shape: "generation config: <param>=<value> <rule>".
[[noreturn]] void bad(const std::string& param, const std::string& value, const std::string& rule) {
  std::string s = "generation config: ";
  s += param;
  s += "=";
  s += value;
  s += " ";
  s += rule;
  throw Error(s);
}

void need(bool ok, const std::string& param, double value, const std::string& rule) {
  if (!ok) bad(param, fmt(value), rule);
}

void need_ids(const std::vector<int32_t>& ids, const std::string& param) {
  for (int32_t id : ids) {
    if (id < 0) bad(param, std::to_string(id), "is not a token id (must be >= 0)");
  }
}

}  // namespace

EarlyStopping parse_early_stopping(const std::string& s) {
  if (s == "true") return EarlyStopping::True;
  if (s == "false") return EarlyStopping::False;
  if (s == "never") return EarlyStopping::Never;
  bad("early_stopping", "\"" + s + "\"", "must be one of true, false, never");
}

const char* to_string(EarlyStopping e) {
  switch (e) {
    case EarlyStopping::True: return "true";
    case EarlyStopping::False: return "false";
    case EarlyStopping::Never: return "never";
  }
  return "?";
}

void GenerationConfig::validate() const {
  need(std::isfinite(temperature) && temperature >= 0.0, "temperature", temperature,
       "must be finite and >= 0 (0 means greedy)");
  if (top_k < 0) bad("top_k", std::to_string(top_k), "must be >= 0 (0 disables it)");
  need(std::isfinite(top_p) && top_p > 0.0 && top_p <= 1.0, "top_p", top_p, "outside (0, 1]");
  need(std::isfinite(min_p) && min_p >= 0.0 && min_p <= 1.0, "min_p", min_p, "outside [0, 1] (0 disables it)");
  need(std::isfinite(typical_p) && typical_p > 0.0 && typical_p <= 1.0, "typical_p", typical_p,
       "outside (0, 1] (1 disables it)");
  need(std::isfinite(epsilon_cutoff) && epsilon_cutoff >= 0.0 && epsilon_cutoff < 1.0, "epsilon_cutoff",
       epsilon_cutoff, "outside [0, 1) (0 disables it)");
  need(std::isfinite(eta_cutoff) && eta_cutoff >= 0.0 && eta_cutoff < 1.0, "eta_cutoff", eta_cutoff,
       "outside [0, 1) (0 disables it)");
  need(std::isfinite(repetition_penalty) && repetition_penalty > 0.0, "repetition_penalty", repetition_penalty,
       "must be finite and > 0 (1 disables it)");
  need(std::isfinite(frequency_penalty), "frequency_penalty", frequency_penalty, "must be finite");
  need(std::isfinite(presence_penalty), "presence_penalty", presence_penalty, "must be finite");
  if (no_repeat_ngram_size < 0)
    bad("no_repeat_ngram_size", std::to_string(no_repeat_ngram_size), "must be >= 0 (0 disables it)");
  for (const auto& seq : bad_words_ids) {
    if (seq.empty()) bad("bad_words_ids", "[]", "contains an empty token sequence");
    need_ids(seq, "bad_words_ids");
  }
  for (const auto& [seq, b] : sequence_bias) {
    if (seq.empty()) bad("sequence_bias", "[]", "contains an empty token sequence");
    need_ids(seq, "sequence_bias");
    need(!std::isnan(b), "sequence_bias", b, "bias must not be NaN");
  }
  if (min_length < 0) bad("min_length", std::to_string(min_length), "must be >= 0");
  if (min_new_tokens < 0) bad("min_new_tokens", std::to_string(min_new_tokens), "must be >= 0");
  need_ids(suppress_tokens, "suppress_tokens");
  need_ids(forced_eos_token_ids, "forced_eos_token_id");
  need_ids(eos_token_ids, "eos_token_id");
  if (max_new_tokens) {
    if (*max_new_tokens < 1) bad("max_new_tokens", std::to_string(*max_new_tokens), "must be >= 1");
    if (min_new_tokens > *max_new_tokens) {
      std::string v = std::to_string(min_new_tokens);
      v += " (max_new_tokens=";
      v += std::to_string(*max_new_tokens);
      v += ")";
      bad("min_new_tokens", v, "must be <= max_new_tokens");
    }
  }
  if (!forced_eos_token_ids.empty() && !max_new_tokens)
    bad("forced_eos_token_id", std::to_string(forced_eos_token_ids.front()), "needs max_new_tokens to be set");
  if (max_time) need(std::isfinite(*max_time) && *max_time >= 0.0, "max_time", *max_time, "must be >= 0 seconds");
  for (const auto& s : stop_strings) {
    if (s.empty()) bad("stop_strings", "\"\"", "contains an empty string");
  }
  if (num_beams < 1) bad("num_beams", std::to_string(num_beams), "must be >= 1");
  if (num_return_sequences < 1)
    bad("num_return_sequences", std::to_string(num_return_sequences), "must be >= 1");
  if (num_beams > 1 && num_return_sequences > num_beams) {
    std::string v = std::to_string(num_return_sequences);
    v += " (num_beams=";
    v += std::to_string(num_beams);
    v += ")";
    bad("num_return_sequences", v, "must be <= num_beams under beam search");
  }
  if (num_beams == 1 && !sampling() && num_return_sequences > 1)
    bad("num_return_sequences", std::to_string(num_return_sequences),
        "must be 1 for greedy decoding (use do_sample or num_beams > 1)");
  need(std::isfinite(length_penalty), "length_penalty", length_penalty, "must be finite");
  if (sampler_order != "hf" && sampler_order != "llama.cpp") {
    std::string v = "\"";
    v += sampler_order;
    v += "\"";
    bad("sampler_order", v, "must be one of hf, llama.cpp");
  }
  if (penalty_last_n < -1)
    bad("penalty_last_n", std::to_string(penalty_last_n), "must be >= -1 (-1 whole sequence, 0 off)");
}

namespace {

// transformers 4.40 _get_logits_processor order (the entries we support).
void add_hf_processors(ProcessorChain& c, const GenerationConfig& g) {
  if (!g.sequence_bias.empty()) c.add(make_sequence_bias(g.sequence_bias));
  if (g.repetition_penalty != 1.0) c.add(make_repetition_penalty(g.repetition_penalty));
  if (g.no_repeat_ngram_size > 0) c.add(make_no_repeat_ngram(g.no_repeat_ngram_size));
  if (!g.bad_words_ids.empty()) c.add(make_bad_words(g.bad_words_ids, g.eos_token_ids));
  if (g.min_length > 0 && !g.eos_token_ids.empty()) c.add(make_min_length(g.min_length, g.eos_token_ids));
  if (g.min_new_tokens > 0 && !g.eos_token_ids.empty())
    c.add(make_min_new_tokens(g.min_new_tokens, g.eos_token_ids));
  if (!g.forced_eos_token_ids.empty()) c.add(make_forced_eos(*g.max_new_tokens, g.forced_eos_token_ids));
  if (!g.suppress_tokens.empty()) c.add(make_suppress_tokens(g.suppress_tokens));
}

// transformers 4.40 _get_logits_warper order, with min_p where later versions
// put it (after top_p).
void add_hf_warpers(ProcessorChain& c, const GenerationConfig& g) {
  const int64_t keep = g.min_tokens_to_keep();
  if (g.temperature != 1.0) c.add(make_temperature(g.temperature));
  if (g.top_k != 0) c.add(make_top_k(g.top_k, keep));
  if (g.top_p < 1.0) c.add(make_top_p(g.top_p, keep));
  if (g.min_p > 0.0) c.add(make_min_p(g.min_p, keep));
  if (g.typical_p < 1.0) c.add(make_typical_p(g.typical_p, keep));
  if (g.epsilon_cutoff > 0.0) c.add(make_epsilon_cutoff(g.epsilon_cutoff, keep));
  if (g.eta_cutoff > 0.0) c.add(make_eta_cutoff(g.eta_cutoff, keep));
}

// llama.cpp's documented default chain: penalties -> top_k -> typical_p ->
// top_p -> min_p -> temperature. The HF-only constraints (bad words, EOS
// masks, ...) still run first: they are hard rules, not sampling choices.
void add_llama_chain(ProcessorChain& c, const GenerationConfig& g) {
  GenerationConfig rules = g;
  rules.repetition_penalty = 1.0;  // replaced by the windowed penalties below
  add_hf_processors(c, rules);
  const bool penalize = g.penalty_last_n != 0 &&
                        (g.repetition_penalty != 1.0 || g.frequency_penalty != 0.0 || g.presence_penalty != 0.0);
  if (penalize)
    c.add(make_llama_penalties(g.penalty_last_n, g.repetition_penalty, g.frequency_penalty, g.presence_penalty));
  if (!g.sampling()) return;
  const int64_t keep = g.min_tokens_to_keep();
  if (g.top_k != 0) c.add(make_top_k(g.top_k, keep));
  if (g.typical_p < 1.0) c.add(make_typical_p(g.typical_p, keep));
  if (g.top_p < 1.0) c.add(make_top_p(g.top_p, keep));
  if (g.min_p > 0.0) c.add(make_min_p(g.min_p, keep));
  if (g.epsilon_cutoff > 0.0) c.add(make_epsilon_cutoff(g.epsilon_cutoff, keep));
  if (g.eta_cutoff > 0.0) c.add(make_eta_cutoff(g.eta_cutoff, keep));
  if (g.temperature != 1.0) c.add(make_temperature(g.temperature));
}

}  // namespace

ProcessorChain build_chain(const GenerationConfig& cfg) {
  cfg.validate();
  ProcessorChain chain;
  if (cfg.sampler_order == "llama.cpp") {
    add_llama_chain(chain, cfg);
    return chain;
  }
  add_hf_processors(chain, cfg);
  if (cfg.sampling()) add_hf_warpers(chain, cfg);
  return chain;
}

}  // namespace nucleus::sampling
