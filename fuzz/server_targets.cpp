// The HTTP API's request parsing: raw body bytes (size, UTF-8, nesting
// checks, JSON) then the OpenAI completions / chat translation into a
// scheduler request, against the stories260K tokenizer and a real chat
// template. Bad input must come back as ApiError (an HTTP status) or
// nucleus::Error; what the parser accepts must be a request the scheduler can
// take (ids in range, caps respected, a valid processor chain).
#include <memory>

#include "chat/chat_template.h"
#include "fuzz/targets.h"
#include "sampling/generation_config.h"
#include "server/api_error.h"
#include "server/json_body.h"
#include "server/openai_request.h"
#include "tokenizer/hf_tokenizer.h"
#include "util/error.h"

#ifndef NUCLEUS_TEST_DATA
#error "NUCLEUS_TEST_DATA must name tests/data"
#endif

namespace nucleus::fuzz {
namespace {

struct ServerFixture {
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat;
  server::ModelInfo model;
};

const ServerFixture& fixture() {
  static const ServerFixture f = [] {
    const std::string data = NUCLEUS_TEST_DATA;
    ServerFixture x;
    x.tokenizer = load_hf_tokenizer(data + "/hf/stories260K-hf");
    x.chat = load_chat_template(data + "/chat/llama3-instruct.tokenizer_config.json");
    x.model.id = "stories260K";
    x.model.context_length = 512;
    x.model.vocab_size = x.tokenizer->vocab_size();
    x.model.tokenizer = x.tokenizer.get();
    x.model.chat_template = &x.chat;
    return x;
  }();
  return f;
}

}  // namespace

void openai_request(Input in) {
  if (in.empty()) return;
  const ServerFixture& f = fixture();
  const bool chat = (in[0] & 1) != 0;
  const std::string_view body(reinterpret_cast<const char*>(in.data()) + 1, in.size() - 1);
  server::RequestLimits limits;
  try {
    server::BodyLimits bl;
    const nlohmann::json j = server::parse_json_body(body, bl);
    const server::ParsedRequest r = chat ? server::parse_chat_request(j, f.model, limits, 7)
                                         : server::parse_completion_request(j, f.model, limits, 7);
    const auto& gen = r.options.gen;
    if (gen.prompt.empty()) invariant_failed("accepted an empty prompt");
    for (int32_t id : gen.prompt)
      if (id < 0 || id >= f.model.vocab_size) invariant_failed("accepted a prompt id out of range");
    if (r.n < 1 || r.n > limits.max_n) invariant_failed("accepted n beyond its cap");
    if (r.top_logprobs < 0 || r.top_logprobs > limits.max_top_logprobs)
      invariant_failed("accepted top_logprobs beyond its cap");
    if (static_cast<int64_t>(gen.prompt.size()) >= f.model.context_length)
      invariant_failed("accepted a prompt that fills the context");
    (void)sampling::build_chain(gen.config);  // may refuse a combination (-> 422)
  } catch (const server::ApiError&) {
  } catch (const Error&) {
  }
}

}  // namespace nucleus::fuzz
