#pragma once
// OpenAI request JSON -> serve::RequestOptions, with every check a front end
// can make before the scheduler sees the request. Bad input throws ApiError
// naming the field (param) in OpenAI's error shape.
//
// Semantics where OpenAI and Hugging Face differ (README "nucleus serve"):
//   - temperature defaults to 1.0 (OpenAI) and > 0 means sampling; 0 is greedy.
//   - top_k defaults to 0 (off), not HF's 50; top_p 1, min_p 0, typical_p 1.
//   - presence_penalty / frequency_penalty exist only in the llama.cpp
//     sampler order: giving either selects it (penalty window penalty_last_n,
//     default 64, prompt included); with sampler_order "hf" they are refused.
//   - logit_bias {"id": bias} becomes single-token sequence_bias entries.
//   - num_beams > 1 is deterministic beam search (no sampling); n returns
//     that many beams.
//   - without a seed a request gets a fresh random seed.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "serve/request.h"
#include "tokenizer/tokenizer.h"

namespace nucleus::server {

enum class Endpoint { Completions, Chat };

// What the translation needs to know about the served model.
struct ModelInfo {
  std::string id;  // the "model" name clients use
  int64_t context_length = 0;
  int64_t vocab_size = 0;
  const Tokenizer* tokenizer = nullptr;         // null: text prompts refused
  const ChatTemplate* chat_template = nullptr;  // null: chat refused
  // EOS of chat replies: the model's plus the template's end-of-turn token
  // (empty: the scheduler's default, the model's EOS).
  std::vector<int32_t> chat_eos_ids;
};

struct RequestLimits {
  int64_t max_n = 16;
  int64_t max_beams = 16;
  int64_t max_top_logprobs = 20;
  size_t max_stop = 16;
  size_t max_stop_bytes = 256;
  size_t max_logit_bias = 1024;
  size_t max_messages = 4096;
};

struct ParsedRequest {
  Endpoint endpoint = Endpoint::Completions;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;       // return per-token logprobs
  int64_t top_logprobs = 0;    // alternatives per token (also in options)
  int64_t n = 1;
  bool beams = false;
  bool return_token_ids = false;  // vLLM's extension: token ids in every choice
  serve::RequestOptions options;  // options.gen.prompt holds the prompt ids
};

// POST /v1/completions. `fallback_seed` is used when the request has none.
ParsedRequest parse_completion_request(const nlohmann::json& body, const ModelInfo& model,
                                       const RequestLimits& limits, uint64_t fallback_seed);

// POST /v1/chat/completions: messages rendered through the chat template.
ParsedRequest parse_chat_request(const nlohmann::json& body, const ModelInfo& model,
                                 const RequestLimits& limits, uint64_t fallback_seed);

// POST /tokenize {"prompt"|"content": text, "add_special_tokens": bool}
// -> {"tokens": [...], "count": n, "max_model_len": ctx}.
nlohmann::json tokenize_request(const nlohmann::json& body, const ModelInfo& model);
// POST /detokenize {"tokens": [...]} -> {"prompt": text}.
nlohmann::json detokenize_request(const nlohmann::json& body, const ModelInfo& model);

// Checks the optional "model" field: 404 when it names another model.
void check_model(const nlohmann::json& body, const ModelInfo& model);

}  // namespace nucleus::server
