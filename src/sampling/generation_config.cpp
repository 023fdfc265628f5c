#include "sampling/generation_config.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <type_traits>

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
    case EarlyStopping::True:
      return "true";
    case EarlyStopping::False:
      return "false";
    case EarlyStopping::Never:
      return "never";
  }
  return "?";
}

void GenerationConfig::validate() const {
  need(std::isfinite(temperature) && temperature >= 0.0, "temperature", temperature,
       "must be finite and >= 0 (0 means greedy)");
  if (top_k < 0) bad("top_k", std::to_string(top_k), "must be >= 0 (0 disables it)");
  need(std::isfinite(top_p) && top_p > 0.0 && top_p <= 1.0, "top_p", top_p, "outside (0, 1]");
  need(std::isfinite(min_p) && min_p >= 0.0 && min_p <= 1.0, "min_p", min_p,
       "outside [0, 1] (0 disables it)");
  need(std::isfinite(typical_p) && typical_p > 0.0 && typical_p <= 1.0, "typical_p", typical_p,
       "outside (0, 1] (1 disables it)");
  need(std::isfinite(epsilon_cutoff) && epsilon_cutoff >= 0.0 && epsilon_cutoff < 1.0,
       "epsilon_cutoff", epsilon_cutoff, "outside [0, 1) (0 disables it)");
  need(std::isfinite(eta_cutoff) && eta_cutoff >= 0.0 && eta_cutoff < 1.0, "eta_cutoff", eta_cutoff,
       "outside [0, 1) (0 disables it)");
  need(std::isfinite(repetition_penalty) && repetition_penalty > 0.0, "repetition_penalty",
       repetition_penalty, "must be finite and > 0 (1 disables it)");
  need(std::isfinite(frequency_penalty), "frequency_penalty", frequency_penalty, "must be finite");
  need(std::isfinite(presence_penalty), "presence_penalty", presence_penalty, "must be finite");
  if (no_repeat_ngram_size < 0)
    bad("no_repeat_ngram_size", std::to_string(no_repeat_ngram_size),
        "must be >= 0 (0 disables it)");
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
    bad("forced_eos_token_id", std::to_string(forced_eos_token_ids.front()),
        "needs max_new_tokens to be set");
  if (max_time)
    need(std::isfinite(*max_time) && *max_time >= 0.0, "max_time", *max_time,
         "must be >= 0 seconds");
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
    bad("penalty_last_n", std::to_string(penalty_last_n),
        "must be >= -1 (-1 whole sequence, 0 off)");
}

namespace {

// transformers 4.40 _get_logits_processor order (the entries we support).
void add_hf_processors(ProcessorChain& c, const GenerationConfig& g) {
  if (!g.sequence_bias.empty()) c.add(make_sequence_bias(g.sequence_bias));
  if (g.repetition_penalty != 1.0) c.add(make_repetition_penalty(g.repetition_penalty));
  if (g.no_repeat_ngram_size > 0) c.add(make_no_repeat_ngram(g.no_repeat_ngram_size));
  if (!g.bad_words_ids.empty()) c.add(make_bad_words(g.bad_words_ids, g.eos_token_ids));
  if (g.min_length > 0 && !g.eos_token_ids.empty())
    c.add(make_min_length(g.min_length, g.eos_token_ids));
  if (g.min_new_tokens > 0 && !g.eos_token_ids.empty())
    c.add(make_min_new_tokens(g.min_new_tokens, g.eos_token_ids));
  if (!g.forced_eos_token_ids.empty())
    c.add(make_forced_eos(*g.max_new_tokens, g.forced_eos_token_ids));
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
// llama.cpp has no epsilon/eta cutoffs; when set they run after min_p, still
// before temperature. Each filter keeps its HF definition: only the order and
// the penalty window differ between the two presets.
void add_llama_chain(ProcessorChain& c, const GenerationConfig& g) {
  GenerationConfig rules = g;
  rules.repetition_penalty = 1.0;  // replaced by the windowed penalties below
  add_hf_processors(c, rules);
  const bool penalize =
      g.penalty_last_n != 0 &&
      (g.repetition_penalty != 1.0 || g.frequency_penalty != 0.0 || g.presence_penalty != 0.0);
  if (penalize)
    c.add(make_llama_penalties(g.penalty_last_n, g.repetition_penalty, g.frequency_penalty,
                               g.presence_penalty));
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

namespace {

[[noreturn]] void bad_json(const std::string& source, const std::string& key,
                           const std::string& what) {
  std::string s = source;
  s += ": field \"";
  s += key;
  s += "\": ";
  s += what;
  throw Error(s);
}

std::string dump_short(const nlohmann::json& v) {
  std::string d = v.dump();
  if (d.size() > 60) {
    d.resize(60);
    d += "...";
  }
  return d;
}

template <typename T>
T get_as(const nlohmann::json& v, const std::string& source, const std::string& key) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) bad_json(source, key, "expected true/false, got " + dump_short(v));
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) bad_json(source, key, "expected an integer, got " + dump_short(v));
    return v.get<T>();
  } else {
    if (!v.is_number()) bad_json(source, key, "expected a number, got " + dump_short(v));
    return v.get<T>();
  }
}

std::vector<int32_t> get_ids(const nlohmann::json& v, const std::string& source,
                             const std::string& key, bool allow_scalar) {
  if (allow_scalar && v.is_number_integer()) return {v.get<int32_t>()};
  if (!v.is_array()) bad_json(source, key, "expected a list of token ids, got " + dump_short(v));
  std::vector<int32_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer())
      bad_json(source, key, "expected integer token ids, got " + dump_short(e));
    const int64_t id = e.get<int64_t>();
    if (id < std::numeric_limits<int32_t>::min() || id > std::numeric_limits<int32_t>::max())
      bad_json(source, key, "token id " + std::to_string(id) + " out of range");
    out.push_back(static_cast<int32_t>(id));
  }
  return out;
}

}  // namespace

void apply_hf_json(const nlohmann::json& j, GenerationConfig& cfg, const std::string& source) {
  if (!j.is_object())
    bad_json(source, "(top level)", "expected a JSON object, got " + dump_short(j));
  auto has = [&](const char* k) { return j.contains(k) && !j.at(k).is_null(); };
  auto num = [&](const char* k, double& dst) {
    if (has(k)) dst = get_as<double>(j.at(k), source, k);
  };
  auto integer = [&](const char* k, int64_t& dst) {
    if (has(k)) dst = get_as<int64_t>(j.at(k), source, k);
  };
  if (has("do_sample")) cfg.do_sample = get_as<bool>(j.at("do_sample"), source, "do_sample");
  num("temperature", cfg.temperature);
  integer("top_k", cfg.top_k);
  num("top_p", cfg.top_p);
  num("min_p", cfg.min_p);
  num("typical_p", cfg.typical_p);
  num("epsilon_cutoff", cfg.epsilon_cutoff);
  num("eta_cutoff", cfg.eta_cutoff);
  num("repetition_penalty", cfg.repetition_penalty);
  num("frequency_penalty", cfg.frequency_penalty);
  num("presence_penalty", cfg.presence_penalty);
  integer("no_repeat_ngram_size", cfg.no_repeat_ngram_size);
  integer("min_length", cfg.min_length);
  integer("min_new_tokens", cfg.min_new_tokens);
  integer("num_beams", cfg.num_beams);
  integer("num_return_sequences", cfg.num_return_sequences);
  integer("penalty_last_n", cfg.penalty_last_n);
  num("length_penalty", cfg.length_penalty);
  if (has("max_new_tokens"))
    cfg.max_new_tokens = get_as<int64_t>(j.at("max_new_tokens"), source, "max_new_tokens");
  if (has("max_time")) cfg.max_time = get_as<double>(j.at("max_time"), source, "max_time");
  if (has("seed")) cfg.seed = get_as<uint64_t>(j.at("seed"), source, "seed");
  if (has("early_stopping")) {
    const auto& v = j.at("early_stopping");
    if (v.is_boolean()) {
      cfg.early_stopping = v.get<bool>() ? EarlyStopping::True : EarlyStopping::False;
    } else if (v.is_string() && v.get<std::string>() == "never") {
      cfg.early_stopping = EarlyStopping::Never;
    } else {
      bad_json(source, "early_stopping", "expected true, false or \"never\", got " + dump_short(v));
    }
  }
  if (has("eos_token_id"))
    cfg.eos_token_ids = get_ids(j.at("eos_token_id"), source, "eos_token_id", true);
  if (has("forced_eos_token_id"))
    cfg.forced_eos_token_ids =
        get_ids(j.at("forced_eos_token_id"), source, "forced_eos_token_id", true);
  if (has("suppress_tokens"))
    cfg.suppress_tokens = get_ids(j.at("suppress_tokens"), source, "suppress_tokens", false);
  if (has("bad_words_ids")) {
    const auto& v = j.at("bad_words_ids");
    if (!v.is_array())
      bad_json(source, "bad_words_ids", "expected a list of token id lists, got " + dump_short(v));
    cfg.bad_words_ids.clear();
    for (const auto& seq : v)
      cfg.bad_words_ids.push_back(get_ids(seq, source, "bad_words_ids", false));
  }
  if (has("sequence_bias")) {
    const auto& v = j.at("sequence_bias");
    cfg.sequence_bias.clear();
    if (v.is_array()) {
      for (const auto& pair : v) {
        if (!pair.is_array() || pair.size() != 2)
          bad_json(source, "sequence_bias",
                   "expected [[ids...], bias] pairs, got " + dump_short(pair));
        cfg.sequence_bias.emplace_back(get_ids(pair[0], source, "sequence_bias", false),
                                       get_as<double>(pair[1], source, "sequence_bias"));
      }
    } else if (v.is_object()) {
      for (const auto& [key, bias] : v.items()) {
        std::vector<int32_t> ids;
        std::stringstream ss(key);
        std::string part;
        while (std::getline(ss, part, ',')) {
          try {
            size_t used = 0;
            const long long id = std::stoll(part, &used);
            if (used != part.size() || id < 0 || id > std::numeric_limits<int32_t>::max())
              throw std::out_of_range("");
            ids.push_back(static_cast<int32_t>(id));
          } catch (const std::exception&) {
            bad_json(source, "sequence_bias",
                     "key \"" + key + "\" is not a comma-separated list of token ids");
          }
        }
        cfg.sequence_bias.emplace_back(std::move(ids),
                                       get_as<double>(bias, source, "sequence_bias"));
      }
    } else {
      bad_json(source, "sequence_bias",
               "expected a list of [[ids...], bias] pairs or an object, got " + dump_short(v));
    }
  }
  if (has("stop_strings")) {
    const auto& v = j.at("stop_strings");
    cfg.stop_strings.clear();
    if (v.is_string()) {
      cfg.stop_strings.push_back(v.get<std::string>());
    } else if (v.is_array()) {
      for (const auto& s : v) {
        if (!s.is_string())
          bad_json(source, "stop_strings", "expected strings, got " + dump_short(s));
        cfg.stop_strings.push_back(s.get<std::string>());
      }
    } else {
      bad_json(source, "stop_strings",
               "expected a string or a list of strings, got " + dump_short(v));
    }
  }
  if (has("sampler_order")) {
    if (!j.at("sampler_order").is_string())
      bad_json(source, "sampler_order",
               "expected a string, got " + dump_short(j.at("sampler_order")));
    cfg.sampler_order = j.at("sampler_order").get<std::string>();
  }
}

nlohmann::json to_json(const GenerationConfig& c) {
  nlohmann::json j = {
      {"do_sample", c.do_sample},
      {"num_beams", c.num_beams},
      {"num_return_sequences", c.num_return_sequences},
      {"length_penalty", c.length_penalty},
      {"temperature", c.temperature},
      {"top_k", c.top_k},
      {"top_p", c.top_p},
      {"min_p", c.min_p},
      {"typical_p", c.typical_p},
      {"epsilon_cutoff", c.epsilon_cutoff},
      {"eta_cutoff", c.eta_cutoff},
      {"repetition_penalty", c.repetition_penalty},
      {"no_repeat_ngram_size", c.no_repeat_ngram_size},
      {"bad_words_ids", c.bad_words_ids},
      {"min_length", c.min_length},
      {"min_new_tokens", c.min_new_tokens},
      {"suppress_tokens", c.suppress_tokens},
      {"forced_eos_token_id", c.forced_eos_token_ids},
      {"eos_token_id", c.eos_token_ids},
      {"stop_strings", c.stop_strings},
      {"seed", c.seed},
      {"sampler_order", c.sampler_order},
      {"penalty_last_n", c.penalty_last_n},
      {"frequency_penalty", c.frequency_penalty},
      {"presence_penalty", c.presence_penalty},
  };
  if (c.early_stopping == EarlyStopping::Never) {
    j["early_stopping"] = "never";
  } else {
    j["early_stopping"] = c.early_stopping == EarlyStopping::True;
  }
  nlohmann::json bias = nlohmann::json::array();
  for (const auto& [ids, b] : c.sequence_bias) bias.push_back({ids, b});
  j["sequence_bias"] = bias;
  j["max_new_tokens"] =
      c.max_new_tokens ? nlohmann::json(*c.max_new_tokens) : nlohmann::json(nullptr);
  j["max_time"] = c.max_time ? nlohmann::json(*c.max_time) : nlohmann::json(nullptr);
  return j;
}

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
