#pragma once
// The Hugging Face-named generation flags shared by `generate` and `chat`.
// Precedence: HF defaults < the model directory's generation_config.json <
// flags given on the command line.
#include <functional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "sampling/generation_config.h"

namespace nucleus::cli {

class GenerationFlags {
 public:
  void add_to(CLI::App* app);
  // The effective configuration for a model at model_path (a directory may
  // hold generation_config.json). Validates it; throws Error naming the parameter.
  sampling::GenerationConfig resolve(const std::string& model_path) const;
  int64_t max_new_tokens = 256;

 private:
  sampling::GenerationConfig parsed_;  // values as CLI11 parsed them
  bool do_sample_ = false;
  std::string early_stopping_, bad_words_, suppress_, eos_;
  // For every flag: did the user give it, and how to copy it into a config.
  std::vector<std::pair<CLI::Option*, std::function<void(sampling::GenerationConfig&)>>> given_;
  std::vector<CLI::Option*> sampling_knobs_;
  CLI::Option* temperature_ = nullptr;
  CLI::Option* do_sample_flag_ = nullptr;
};

// "5,6;7" -> {{5,6},{7}}.
std::vector<std::vector<int32_t>> parse_id_groups(const std::string& text);

}  // namespace nucleus::cli
