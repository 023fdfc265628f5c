#pragma once
// serve::Event -> OpenAI response JSON: whole bodies (non-streaming) and
// Server-Sent-Event chunks (streaming), for completions and chat, with
// OpenAI's logprobs shapes, usage, finish_reason and system_fingerprint.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "serve/request.h"
#include "server/openai_request.h"

namespace nucleus::server {

struct ResponseContext {
  std::string id;  // "cmpl-…" / "chatcmpl-…"
  std::string model;
  int64_t created = 0;  // Unix seconds
  std::string fingerprint;
  const Tokenizer* tokenizer = nullptr;  // null: token strings are "<id>"
};

// "eos"/"stop" -> "stop", "length"/"time" -> "length"; others pass through.
std::string finish_reason(const std::string& stop_reason);

// The text of one token as it follows `prev` (valid UTF-8), and its raw bytes.
std::string token_text(const Tokenizer* tok, int32_t id, int32_t prev);
std::string token_raw_bytes(const Tokenizer* tok, int32_t id, int32_t prev);

// One request's response. Feed it every token event (on_token) and then the
// final result; it keeps what the non-streaming body needs.
class ResponseBuilder {
 public:
  ResponseBuilder(const ParsedRequest& request, ResponseContext ctx);

  // Streaming chunks for one token event (none when it carries nothing to
  // send). Also records the token for the non-streaming body.
  std::vector<nlohmann::json> on_token(const serve::TokenEvent& t);
  // Streaming: the chunks after the last token: choices that did not end
  // with a token event (beam search) get their text and finish_reason, then
  // the usage chunk when stream_options.include_usage.
  std::vector<nlohmann::json> done_chunks(const GenerateResult& result);
  // Non-streaming: the whole body.
  nlohmann::json body(const GenerateResult& result) const;

 private:
  struct Choice {
    std::string streamed;  // text sent so far
    bool role_sent = false;
    bool finished = false;
    int32_t prev = -1;        // previous token (for token_bytes)
    int64_t chars = 0;        // code points of the tokens' text so far (text_offset)
    nlohmann::json logprobs;  // accumulated in the endpoint's shape
    std::vector<int32_t> ids;
  };
  nlohmann::json chunk(nlohmann::json choices) const;
  nlohmann::json choice_chunk(size_t index, const std::string& text, const nlohmann::json& logprobs,
                              const nlohmann::json& finish, const std::vector<int32_t>& ids);
  nlohmann::json token_logprobs(Choice& c, const serve::TokenEvent& t) const;
  nlohmann::json usage(const GenerateResult& result) const;
  nlohmann::json empty_logprobs() const;

  ParsedRequest req_;  // settings only (prompt ids kept for prompt_token_ids)
  ResponseContext ctx_;
  std::vector<Choice> choices_;
  int64_t completion_tokens_ = 0;
};

}  // namespace nucleus::server
