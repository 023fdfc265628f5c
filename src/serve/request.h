#pragma once
// One request as the scheduler sees it: what was asked (RequestOptions) and
// what it emits (TokenEvent per generated token, then a GenerateResult).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "generate/generator.h"

namespace nucleus::serve {

struct TopLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

// One generated token of one sequence (greedy / sampling; beam search emits
// only its final result).
struct TokenEvent {
  int64_t index = 0;   // sequence index within the request, 0..n-1
  int32_t token = 0;
  float logprob = 0.0f;  // log_softmax of the model's logits row, before processors
  std::vector<TopLogprob> top;  // the top_logprobs best of that row, best first (ties: lower id)
  std::string text;             // text that became final with this token (may be empty)
  bool last = false;            // this sequence ends with this token
  std::string stop_reason;      // when last: "eos", "stop", "length", "time", "cancelled"
};

struct RequestOptions {
  GenerateRequest gen;       // prompt ids + generation settings (HF names)
  int64_t top_logprobs = 0;  // alternatives per token in TokenEvent::top (0..20)
};

// Where a request's output goes; called on the scheduler thread.
struct RequestCallbacks {
  std::function<void(const TokenEvent&)> on_token;
  std::function<void(GenerateResult&&)> on_done;
  std::function<void(const std::string&)> on_error;
  // Polled once per step: true drops the request (client gone).
  std::function<bool()> cancelled;
};

}  // namespace nucleus::serve
