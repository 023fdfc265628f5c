#include "cli/generation_flags.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "util/error.h"

namespace nucleus::cli {

std::vector<std::vector<int32_t>> parse_id_groups(const std::string& text) {
  std::vector<std::vector<int32_t>> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(';', start), text.size());
    const auto ids = parse_ids(text.substr(start, end - start));
    if (!ids.empty()) out.push_back(ids);
    start = end + 1;
  }
  return out;
}

void GenerationFlags::add_to(CLI::App* sub) {
  sampling::GenerationConfig& c = parsed_;
  // Registers a flag bound to a config field and remembers how to copy it.
  auto field = [&](const std::string& names, auto member, const std::string& help) {
    CLI::Option* opt = sub->add_option(names, c.*member, help);
    given_.emplace_back(
        opt, [this, member](sampling::GenerationConfig& dst) { dst.*member = parsed_.*member; });
    return opt;
  };
  using G = sampling::GenerationConfig;
  sub->add_option("-n,--max-new-tokens", max_new_tokens, "tokens to generate (default 256)");
  do_sample_flag_ =
      sub->add_flag("--do-sample", do_sample_, "sample instead of greedy/beam (HF do_sample)");
  temperature_ = field("--temperature", &G::temperature, "softmax temperature; 0 = greedy");
  sampling_knobs_ = {
      temperature_,
      field("--top-k", &G::top_k, "keep the k most likely (HF default 50 when sampling)"),
      field("--top-p", &G::top_p, "nucleus: keep the smallest set with mass >= p"),
      field("--min-p", &G::min_p, "drop tokens below min_p x the top probability"),
      field("--typical-p", &G::typical_p, "locally typical sampling mass"),
      field("--epsilon-cutoff", &G::epsilon_cutoff, "drop probabilities below epsilon"),
      field("--eta-cutoff", &G::eta_cutoff, "eta sampling cutoff"),
  };
  field("--repetition-penalty", &G::repetition_penalty, "HF repetition penalty (1 = off)");
  field("--no-repeat-ngram-size", &G::no_repeat_ngram_size, "ban repeated n-grams of this size");
  field("--min-new-tokens", &G::min_new_tokens, "EOS suppressed until this many new tokens");
  field("--num-beams", &G::num_beams, "beam search width (1 = no beams)");
  field("--length-penalty", &G::length_penalty, "beam score = logprob / length^penalty");
  field("--num-return-sequences", &G::num_return_sequences, "sequences to return");
  field("--stop", &G::stop_strings, "stop when this text appears (not emitted); repeatable");
  field("--max-time", &G::max_time, "stop after this many seconds");
  field("--seed", &G::seed, "seed of the counter-based sampling RNG");
  field("--sampler-order", &G::sampler_order, "hf (default) or llama.cpp");
  field("--penalty-last-n", &G::penalty_last_n, "llama.cpp order: penalty window");
  auto text = [&](const std::string& names, std::string& target, const std::string& help,
                  std::function<void(sampling::GenerationConfig&)> apply) {
    CLI::Option* opt = sub->add_option(names, target, help);
    given_.emplace_back(opt, std::move(apply));
  };
  text("--early-stopping", early_stopping_, "beam stopping: true, false or never",
       [this](sampling::GenerationConfig& d) {
         d.early_stopping = sampling::parse_early_stopping(early_stopping_);
       });
  text("--bad-words", bad_words_, "banned id sequences, e.g. \"5,6;7\"",
       [this](sampling::GenerationConfig& d) { d.bad_words_ids = parse_id_groups(bad_words_); });
  text("--suppress-tokens", suppress_, "ids never generated, e.g. 5,6",
       [this](sampling::GenerationConfig& d) { d.suppress_tokens = parse_ids(suppress_); });
  text("--eos", eos_, "end-of-sequence ids (default: the model's)",
       [this](sampling::GenerationConfig& d) { d.eos_token_ids = parse_ids(eos_); });
}

sampling::GenerationConfig GenerationFlags::resolve(const std::string& model_path) const {
  sampling::GenerationConfig cfg;
  std::error_code ec;
  const std::filesystem::path gc = std::filesystem::path(model_path) / "generation_config.json";
  if (std::filesystem::is_directory(model_path, ec) && std::filesystem::is_regular_file(gc, ec)) {
    std::ifstream in(gc);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    check(!j.is_discarded(), gc.string() + ": invalid JSON");
    sampling::apply_hf_json(j, cfg, gc.string());
  }
  for (const auto& [opt, apply] : given_)
    if (opt->count() > 0) apply(cfg);
  // A sampling knob given on the command line means "sample" (HF would
  // silently ignore it without do_sample); temperature 0 means greedy.
  bool knob = false;
  for (CLI::Option* o : sampling_knobs_) knob = knob || o->count() > 0;
  if (do_sample_flag_->count() > 0 || (knob && cfg.temperature > 0.0)) cfg.do_sample = true;
  if (temperature_->count() > 0 && cfg.temperature == 0.0) cfg.do_sample = false;
  check(max_new_tokens > 0,
        "-n/--max-new-tokens must be positive, got " + std::to_string(max_new_tokens));
  cfg.max_new_tokens = max_new_tokens;
  cfg.validate();
  return cfg;
}

}  // namespace nucleus::cli
