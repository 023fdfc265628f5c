#include "generate/generator.h"

#include <algorithm>

#include "generate/beam_search.h"
#include "generate/job.h"
#include "util/error.h"

namespace nucleus {

void prepare_request(const Engine& engine, const Tokenizer* tokenizer, GenerateRequest& req) {
  sampling::GenerationConfig& cfg = req.config;
  cfg.validate();
  check(!req.prompt.empty(), "empty prompt: give at least one token");
  for (int32_t id : req.prompt)
    check(id >= 0 && id < engine.vocab_size(), "prompt token id " + std::to_string(id) +
                                                   " is out of range [0, " +
                                                   std::to_string(engine.vocab_size()) + ")");
  const int64_t room = engine.context_length() - static_cast<int64_t>(req.prompt.size());
  check(room > 0, "the prompt (" + std::to_string(req.prompt.size()) +
                      " tokens) fills the context length of " +
                      std::to_string(engine.context_length()));
  if (!cfg.max_new_tokens) cfg.max_new_tokens = room;
  check(*cfg.max_new_tokens > 0,
        "max_new_tokens must be positive, got " + std::to_string(*cfg.max_new_tokens));
  cfg.max_new_tokens = std::min(*cfg.max_new_tokens, room);
  // EOS: the request's, else the checkpoint config's, else the vocabulary's.
  if (cfg.eos_token_ids.empty()) cfg.eos_token_ids = engine.config().eos_ids;
  if (cfg.eos_token_ids.empty() && engine.model().vocab().eos_id >= 0)
    cfg.eos_token_ids.push_back(engine.model().vocab().eos_id);
  if (cfg.eos_token_ids.empty() && tokenizer != nullptr && tokenizer->eos_id() >= 0)
    cfg.eos_token_ids.push_back(tokenizer->eos_id());
  check(cfg.stop_strings.empty() || tokenizer != nullptr,
        "stop strings need a tokenizer, and this model has none");
  for (const std::string& s : cfg.stop_strings) check(!s.empty(), "stop strings must not be empty");
}

std::unique_ptr<Job> make_job(const JobContext& ctx, const Tokenizer* tokenizer,
                              const GenerateRequest& request, JobTokenSink on_token) {
  if (request.config.num_beams > 1) return make_beam_job(ctx, tokenizer, request);
  return make_sample_job(ctx, tokenizer, request, std::move(on_token));
}

}  // namespace nucleus
