#include "server/openai_response.h"

namespace nucleus::server {

using nlohmann::json;

std::string finish_reason(const std::string& stop_reason) {
  if (stop_reason == "eos" || stop_reason == "stop") return "stop";
  if (stop_reason == "length" || stop_reason == "time") return "length";
  return stop_reason;
}

std::string token_raw_bytes(const Tokenizer* tok, int32_t id, int32_t prev) {
  if (tok == nullptr || id < 0 || id >= tok->vocab_size()) {
    std::string s = "<";  // (not "<" + ...: GCC 12 warns falsely, -Wrestrict)
    s += std::to_string(id);
    s += ">";
    return s;
  }
  return tok->token_bytes(id, prev);
}

std::string token_text(const Tokenizer* tok, int32_t id, int32_t prev) {
  return valid_utf8(token_raw_bytes(tok, id, prev));
}

namespace {

json bytes_array(const std::string& s) {
  json a = json::array();
  for (char ch : s) a.push_back(static_cast<int>(static_cast<unsigned char>(ch)));
  return a;
}

// Code points in s, counting a byte that cannot start a character as one
// (so offsets still advance over a token holding half a character).
int64_t code_points(const std::string& s) {
  int64_t n = 0;
  for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

}  // namespace

ResponseBuilder::ResponseBuilder(const ParsedRequest& request, ResponseContext ctx)
    : req_(request), ctx_(std::move(ctx)), choices_(static_cast<size_t>(request.n)) {
  const auto& prompt = req_.options.gen.prompt;
  for (Choice& c : choices_) {
    c.prev = prompt.empty() ? -1 : prompt.back();
    c.logprobs = empty_logprobs();
  }
}

json ResponseBuilder::empty_logprobs() const {
  if (req_.endpoint == Endpoint::Chat) return {{"content", json::array()}};
  return {{"tokens", json::array()},
          {"token_logprobs", json::array()},
          {"top_logprobs", json::array()},
          {"text_offset", json::array()}};
}

json ResponseBuilder::token_logprobs(Choice& c, const serve::TokenEvent& t) const {
  const Tokenizer* tok = ctx_.tokenizer;
  const std::string raw = token_raw_bytes(tok, t.token, c.prev);
  const std::string text = valid_utf8(raw);
  json piece;
  if (req_.endpoint == Endpoint::Chat) {
    json top = json::array();
    for (const serve::TopLogprob& a : t.top) {
      const std::string b = token_raw_bytes(tok, a.id, c.prev);
      top.push_back({{"token", valid_utf8(b)}, {"logprob", a.logprob}, {"bytes", bytes_array(b)}});
    }
    json entry = {{"token", text},
                  {"logprob", t.logprob},
                  {"bytes", bytes_array(raw)},
                  {"top_logprobs", top}};
    c.logprobs["content"].push_back(entry);
    piece = {{"content", json::array({entry})}};
  } else {
    json top = json::object();
    for (const serve::TopLogprob& a : t.top) {
      const std::string s = token_text(tok, a.id, c.prev);
      if (!top.contains(s)) top[s] = a.logprob;  // two ids with one text: the likelier one
    }
    c.logprobs["tokens"].push_back(text);
    c.logprobs["token_logprobs"].push_back(t.logprob);
    c.logprobs["top_logprobs"].push_back(top);
    c.logprobs["text_offset"].push_back(c.chars);
    piece = {{"tokens", {text}},
             {"token_logprobs", {t.logprob}},
             {"top_logprobs", json::array({top})},
             {"text_offset", {c.chars}}};
  }
  c.chars += code_points(raw);
  return piece;
}

json ResponseBuilder::chunk(json choices) const {
  const bool chat = req_.endpoint == Endpoint::Chat;
  return {{"id", ctx_.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", ctx_.created},
          {"model", ctx_.model},
          {"system_fingerprint", ctx_.fingerprint},
          {"choices", std::move(choices)}};
}

json ResponseBuilder::choice_chunk(size_t index, const std::string& text, const json& logprobs,
                                   const json& finish, const std::vector<int32_t>& ids) {
  Choice& c = choices_[index];
  json ch = {{"index", index}};
  if (req_.endpoint == Endpoint::Chat) {
    json delta = json::object();
    if (!c.role_sent) delta["role"] = "assistant";
    c.role_sent = true;
    if (!text.empty() || !delta.contains("role") || finish.is_null()) delta["content"] = text;
    ch["delta"] = delta;
  } else {
    ch["text"] = text;
  }
  ch["logprobs"] = logprobs;
  ch["finish_reason"] = finish;
  if (req_.return_token_ids) ch["token_ids"] = ids;
  return ch;
}

std::vector<json> ResponseBuilder::on_token(const serve::TokenEvent& t) {
  std::vector<json> out;
  if (t.index < 0 || t.index >= static_cast<int64_t>(choices_.size())) return out;
  const auto i = static_cast<size_t>(t.index);
  Choice& c = choices_[i];
  ++completion_tokens_;
  c.ids.push_back(t.token);
  json lp = req_.logprobs ? token_logprobs(c, t) : json();
  c.prev = t.token;
  c.streamed += t.text;
  if (!req_.stream) return out;
  // A token whose text is held back (half a character, a possible stop
  // string) still gets a chunk when the client wants per-token data.
  if (t.text.empty() && !req_.logprobs && !req_.return_token_ids && c.role_sent) return out;
  out.push_back(chunk(json::array({choice_chunk(i, t.text, lp, json(), {t.token})})));
  return out;
}

std::vector<json> ResponseBuilder::done_chunks(const GenerateResult& result) {
  std::vector<json> out;
  // finish_reason goes out with the result, not the last token event, so
  // that text the stream still held back (or beam search's whole text) comes first.
  for (size_t i = 0; i < choices_.size() && i < result.sequences.size(); ++i) {
    const SequenceResult& s = result.sequences[i];
    Choice& c = choices_[i];
    std::string rest;
    std::vector<int32_t> ids;
    if (c.ids.empty()) {  // beam search: nothing was streamed
      rest = s.text;
      ids = s.tokens;
    } else if (s.text.size() > c.streamed.size() &&
               s.text.compare(0, c.streamed.size(), c.streamed) == 0) {
      rest = s.text.substr(c.streamed.size());
    }
    json ch = choice_chunk(i, rest, json(), finish_reason(s.stop_reason), ids);
    if (req_.beams) ch["score"] = s.score;
    out.push_back(chunk(json::array({ch})));
  }
  if (req_.include_usage) {
    json u = chunk(json::array());
    u["usage"] = usage(result);
    out.push_back(u);
  }
  return out;
}

json ResponseBuilder::usage(const GenerateResult& result) const {
  int64_t completion = 0;
  for (const SequenceResult& s : result.sequences)
    completion += static_cast<int64_t>(s.tokens.size());
  const auto prompt = static_cast<int64_t>(req_.options.gen.prompt.size());
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

json ResponseBuilder::body(const GenerateResult& result) const {
  const bool chat = req_.endpoint == Endpoint::Chat;
  json choices = json::array();
  for (size_t i = 0; i < result.sequences.size() && i < choices_.size(); ++i) {
    const SequenceResult& s = result.sequences[i];
    json ch = {{"index", i}};
    if (chat) {
      ch["message"] = {{"role", "assistant"}, {"content", s.text}};
    } else {
      ch["text"] = s.text;
    }
    ch["logprobs"] = req_.logprobs ? choices_[i].logprobs : json();
    ch["finish_reason"] = finish_reason(s.stop_reason);
    if (req_.return_token_ids) ch["token_ids"] = s.tokens;
    if (req_.beams) ch["score"] = s.score;
    choices.push_back(ch);
  }
  json b = {{"id", ctx_.id},
            {"object", chat ? "chat.completion" : "text_completion"},
            {"created", ctx_.created},
            {"model", ctx_.model},
            {"system_fingerprint", ctx_.fingerprint},
            {"choices", choices},
            {"usage", usage(result)}};
  if (req_.return_token_ids) b["prompt_token_ids"] = req_.options.gen.prompt;
  return b;
}

}  // namespace nucleus::server
