#pragma once
// One struct for every generation setting of the C++ API. Names and defaults
// are Hugging Face GenerationConfig's (transformers 4.40) so that settings
// carry over unchanged; the few extras (sampler_order, penalty_last_n,
// frequency/presence penalties, seed) are llama.cpp's.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sampling/processor.h"

namespace nucleus::sampling {

enum class EarlyStopping { False, True, Never };

struct GenerationConfig {
  // Strategy.
  bool do_sample = false;
  int64_t num_beams = 1;
  int64_t num_return_sequences = 1;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::False;

  // Warpers (sampling only). temperature 0 means greedy.
  double temperature = 1.0;
  int64_t top_k = 50;           // 0 disables
  double top_p = 1.0;           // 1 disables
  double min_p = 0.0;           // 0 disables (absent from HF 4.40; later HF semantics)
  double typical_p = 1.0;       // 1 disables
  double epsilon_cutoff = 0.0;  // 0 disables
  double eta_cutoff = 0.0;      // 0 disables

  // Processors (all strategies).
  double repetition_penalty = 1.0;  // 1 disables
  int64_t no_repeat_ngram_size = 0;
  std::vector<std::vector<int32_t>> bad_words_ids;
  std::vector<std::pair<std::vector<int32_t>, double>> sequence_bias;
  int64_t min_length = 0;  // prompt included (HF min_length)
  int64_t min_new_tokens = 0;
  std::vector<int32_t> suppress_tokens;
  std::vector<int32_t> forced_eos_token_ids;  // forced at the last allowed step

  // Stopping.
  std::optional<int64_t> max_new_tokens;  // unset: the caller's limit (context size)
  std::vector<int32_t> eos_token_ids;
  std::vector<std::string> stop_strings;
  std::optional<double> max_time;  // seconds

  // Determinism: the counter-based RNG is keyed by (seed, sequence index, step).
  uint64_t seed = 0;

  // "hf" (transformers' order) or "llama.cpp" (penalties -> top_k -> typical_p
  // -> top_p -> min_p -> temperature).
  std::string sampler_order = "hf";
  // llama.cpp preset only: window of the penalties (-1 whole sequence, 0 off).
  int64_t penalty_last_n = 64;
  double frequency_penalty = 0.0;
  double presence_penalty = 0.0;

  // Throws nucleus::Error naming the first bad parameter, its value and the
  // allowed range.
  void validate() const;

  // True when the token is drawn from a distribution (do_sample and temperature > 0).
  bool sampling() const { return do_sample && temperature > 0.0; }
  // HF's min_tokens_to_keep for the warpers: 2 under beam search, else 1.
  int64_t min_tokens_to_keep() const { return num_beams > 1 ? 2 : 1; }
};

// Parses "true" / "false" / "never" (CLI and JSON front ends).
EarlyStopping parse_early_stopping(const std::string& s);
const char* to_string(EarlyStopping e);

// Overlays the keys of a Hugging Face generation_config.json (or a JSON
// request using the same names) onto cfg; unknown keys are ignored, a known
// key of the wrong type or shape throws nucleus::Error naming `source` and the
// key. eos_token_id / forced_eos_token_id may be an int or a list;
// early_stopping true/false/"never"; sequence_bias a list of [[ids...], bias]
// pairs or an object {"id,id": bias}; null leaves the field unchanged.
// Does not validate: call validate() (or build_chain) afterwards.
void apply_hf_json(const nlohmann::json& j, GenerationConfig& cfg, const std::string& source);

// The effective settings under HF names (for logs, --verbose, JSON output).
nlohmann::json to_json(const GenerationConfig& cfg);

// Validates cfg and builds its chain in cfg.sampler_order. Greedy (do_sample
// false or temperature 0) gets the processors only; sampling adds the warpers.
ProcessorChain build_chain(const GenerationConfig& cfg);

}  // namespace nucleus::sampling
