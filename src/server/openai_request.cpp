#include "server/openai_request.h"

#include <cmath>
#include <optional>

#include "server/api_error.h"
#include "server/json_body.h"
#include "util/error.h"

namespace nucleus::server {
namespace {

using nlohmann::json;

[[noreturn]] void wrong_type(const std::string& key, const char* expected, const json& v) {
  throw ApiError(400, "'" + key + "' must be " + expected + ", got " + short_dump(v), key,
                 "invalid_type");
}

[[noreturn]] void bad_value(const std::string& key, const std::string& why,
                            const std::string& code = "invalid_value") {
  throw ApiError(422, "'" + key + "' " + why, key, code);
}

std::string num_str(double v) {
  json j = v;
  return j.dump();
}

// Typed access to optional request fields; null counts as absent (clients
// send explicit nulls for unset fields).
class Fields {
 public:
  explicit Fields(const json& j) : j_(j) {}
  const json* get(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<bool> boolean(const std::string& key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) wrong_type(key, "a boolean", *v);
    return v->get<bool>();
  }
  std::optional<double> number(const std::string& key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) wrong_type(key, "a number", *v);
    const double d = v->get<double>();
    if (!std::isfinite(d)) bad_value(key, "must be finite");
    return d;
  }
  std::optional<int64_t> integer(const std::string& key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_number_integer()) {
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        bad_value(key, "is out of range");
      return v->get<int64_t>();
    }
    // 5.0 is an integer too (some clients write every number as a double).
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
        return static_cast<int64_t>(d);
    }
    wrong_type(key, "an integer", *v);
  }
  std::optional<std::string> string(const std::string& key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) wrong_type(key, "a string", *v);
    return v->get<std::string>();
  }

 private:
  const json& j_;
};

void in_range(const std::string& key, double v, double lo, double hi) {
  if (v < lo || v > hi)
    bad_value(key, "=" + num_str(v) + " is outside [" + num_str(lo) + ", " + num_str(hi) + "]");
}

// Fields neither endpoint implements; refused rather than silently ignored
// when they would change the output.
void refuse_unsupported(const Fields& f, const ParsedRequest& r) {
  if (f.boolean("echo").value_or(false)) bad_value("echo", "is not supported", "unsupported");
  if (auto s = f.string("suffix"); s && !s->empty())
    bad_value("suffix", "is not supported", "unsupported");
  if (auto b = f.integer("best_of"); b && *b != r.n)
    bad_value("best_of", "is not supported (use n or num_beams)", "unsupported");
  for (const char* key : {"tools", "functions"}) {
    const json* v = f.get(key);
    if (v != nullptr && !(v->is_array() && v->empty()))
      bad_value(key, "is not supported", "unsupported");
  }
  if (const json* rf = f.get("response_format")) {
    if (!rf->is_object()) wrong_type("response_format", "an object", *rf);
    const auto type = rf->find("type");
    if (type == rf->end() || !type->is_string() || type->get<std::string>() != "text")
      bad_value("response_format", "only {\"type\": \"text\"} is supported", "unsupported");
  }
}

std::vector<std::string> parse_stop(const Fields& f, const RequestLimits& limits) {
  const json* v = f.get("stop");
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const json& s : *v) {
      if (!s.is_string()) wrong_type("stop", "a string or a list of strings", *v);
      out.push_back(s.get<std::string>());
    }
  } else {
    wrong_type("stop", "a string or a list of strings", *v);
  }
  if (out.size() > limits.max_stop)
    bad_value("stop", "has " + std::to_string(out.size()) + " strings; at most " +
                          std::to_string(limits.max_stop) + " are allowed");
  for (const std::string& s : out) {
    if (s.empty()) bad_value("stop", "must not contain an empty string");
    if (s.size() > limits.max_stop_bytes)
      bad_value("stop", "has a string of " + std::to_string(s.size()) + " bytes; at most " +
                            std::to_string(limits.max_stop_bytes) + " are allowed");
  }
  return out;
}

void parse_logit_bias(const Fields& f, const ModelInfo& model, const RequestLimits& limits,
                      sampling::GenerationConfig& c) {
  const json* v = f.get("logit_bias");
  if (v == nullptr) return;
  if (!v->is_object()) wrong_type("logit_bias", "an object {\"token id\": bias}", *v);
  if (v->size() > limits.max_logit_bias)
    bad_value("logit_bias", "has " + std::to_string(v->size()) + " entries; at most " +
                                std::to_string(limits.max_logit_bias) + " are allowed");
  for (const auto& [key, bias] : v->items()) {
    int64_t id = -1;
    bool digits = !key.empty() && key.size() <= 10;
    for (char ch : key) digits = digits && ch >= '0' && ch <= '9';
    if (digits) id = std::stoll(key);
    if (!digits || id >= model.vocab_size)
      bad_value("logit_bias", "key \"" + short_dump(json(key)).substr(1) +
                                  " is not a token id in [0, " + std::to_string(model.vocab_size) +
                                  ")");
    if (!bias.is_number()) wrong_type("logit_bias", "an object of numbers", bias);
    const double b = bias.get<double>();
    if (!std::isfinite(b) || b < -100.0 || b > 100.0)
      bad_value("logit_bias",
                "bias " + num_str(b) + " for token " + key + " is outside [-100, 100]");
    c.sequence_bias.push_back({{static_cast<int32_t>(id)}, b});
  }
}

// Everything both endpoints share: sampling, stopping, beams, streaming.
void parse_common(const Fields& f, const ModelInfo& model, const RequestLimits& limits,
                  uint64_t fallback_seed, ParsedRequest& r) {
  sampling::GenerationConfig& c = r.options.gen.config;
  c = sampling::GenerationConfig{};
  c.top_k = 0;  // OpenAI has no top-k: off unless asked for

  r.n = f.integer("n").value_or(1);
  if (r.n < 1 || r.n > limits.max_n)
    bad_value("n",
              "=" + std::to_string(r.n) + " is outside [1, " + std::to_string(limits.max_n) + "]");
  c.num_beams = f.integer("num_beams").value_or(1);
  if (c.num_beams < 1 || c.num_beams > limits.max_beams)
    bad_value("num_beams", "=" + std::to_string(c.num_beams) + " is outside [1, " +
                               std::to_string(limits.max_beams) + "]");
  r.beams = c.num_beams > 1;
  if (r.beams && r.n > c.num_beams)
    bad_value("n",
              "=" + std::to_string(r.n) + " must be <= num_beams=" + std::to_string(c.num_beams));
  c.num_return_sequences = r.n;
  refuse_unsupported(f, r);

  c.temperature = f.number("temperature").value_or(1.0);
  in_range("temperature", c.temperature, 0.0, 100.0);
  c.do_sample = c.temperature > 0.0 && !r.beams;
  if (auto v = f.number("top_p")) {
    c.top_p = *v;
    if (c.top_p <= 0.0 || c.top_p > 1.0)
      bad_value("top_p", "=" + num_str(*v) + " is outside (0, 1]");
  }
  if (auto v = f.integer("top_k")) {
    // -1 is vLLM's spelling of "off".
    if (*v < -1) bad_value("top_k", "=" + std::to_string(*v) + " must be >= 0 (0 or -1: off)");
    c.top_k = *v < 0 ? 0 : *v;
  }
  if (auto v = f.number("min_p")) {
    c.min_p = *v;
    in_range("min_p", *v, 0.0, 1.0);
  }
  if (auto v = f.number("typical_p")) {
    c.typical_p = *v;
    if (*v <= 0.0 || *v > 1.0) bad_value("typical_p", "=" + num_str(*v) + " is outside (0, 1]");
  }
  if (auto v = f.number("repetition_penalty")) {
    c.repetition_penalty = *v;
    if (*v <= 0.0) bad_value("repetition_penalty", "=" + num_str(*v) + " must be > 0 (1: off)");
  }
  if (auto v = f.integer("no_repeat_ngram_size")) {
    c.no_repeat_ngram_size = *v;
    if (*v < 0) bad_value("no_repeat_ngram_size", "must be >= 0");
  }
  if (auto v = f.integer("min_tokens")) {
    c.min_new_tokens = *v;
    if (*v < 0) bad_value("min_tokens", "must be >= 0");
  }
  if (auto v = f.number("length_penalty")) c.length_penalty = *v;
  if (const json* v = f.get("early_stopping")) {
    if (v->is_boolean()) {
      c.early_stopping =
          v->get<bool>() ? sampling::EarlyStopping::True : sampling::EarlyStopping::False;
    } else if (v->is_string() && v->get<std::string>() == "never") {
      c.early_stopping = sampling::EarlyStopping::Never;
    } else {
      wrong_type("early_stopping", "true, false or \"never\"", *v);
    }
  }
  // Exact speculative decoding (same output, fewer forwards): prompt lookup.
  if (auto v = f.string("speculative")) {
    if (*v == "lookup") {
      r.options.gen.speculative.mode = SpeculativeOptions::Mode::Lookup;
    } else if (*v != "off" && !v->empty()) {
      bad_value("speculative", "must be \"lookup\" or \"off\" (a draft model is a CLI option)");
    }
  }
  if (auto v = f.integer("draft_max")) {
    if (*v < 1 || *v > 64) bad_value("draft_max", "=" + std::to_string(*v) + " is outside [1, 64]");
    r.options.gen.speculative.draft_max = *v;
  }
  if (auto v = f.integer("ngram")) {
    if (*v < 1 || *v > 64) bad_value("ngram", "=" + std::to_string(*v) + " is outside [1, 64]");
    r.options.gen.speculative.ngram = *v;
  }
  const auto order = f.string("sampler_order");
  if (order && *order != "hf" && *order != "llama.cpp")
    bad_value("sampler_order", "must be \"hf\" or \"llama.cpp\"");
  c.presence_penalty = f.number("presence_penalty").value_or(0.0);
  c.frequency_penalty = f.number("frequency_penalty").value_or(0.0);
  in_range("presence_penalty", c.presence_penalty, -2.0, 2.0);
  in_range("frequency_penalty", c.frequency_penalty, -2.0, 2.0);
  const bool penalties = c.presence_penalty != 0.0 || c.frequency_penalty != 0.0;
  if (penalties && order && *order == "hf")
    bad_value(c.presence_penalty != 0.0 ? "presence_penalty" : "frequency_penalty",
              "needs sampler_order \"llama.cpp\" (the HF order has no such penalty)");
  c.sampler_order = order ? *order : (penalties ? "llama.cpp" : "hf");
  if (auto v = f.integer("penalty_last_n")) {
    c.penalty_last_n = *v;
    if (*v < -1) bad_value("penalty_last_n", "must be >= -1 (-1: whole sequence, 0: off)");
  }
  if (const json* v = f.get("seed")) {
    if (v->is_number_unsigned()) {
      c.seed = v->get<uint64_t>();
    } else if (v->is_number_integer()) {
      c.seed = static_cast<uint64_t>(v->get<int64_t>());  // negative seeds wrap, still fixed
    } else {
      wrong_type("seed", "an integer", *v);
    }
  } else {
    c.seed = fallback_seed;
  }
  c.stop_strings = parse_stop(f, limits);
  if (!c.stop_strings.empty() && model.tokenizer == nullptr)
    bad_value("stop", "needs a tokenizer, and this model has none");
  parse_logit_bias(f, model, limits, c);

  r.return_token_ids = f.boolean("return_token_ids").value_or(false);
  r.stream = f.boolean("stream").value_or(false);
  if (const json* so = f.get("stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object", *so);
    const Fields sf(*so);
    r.include_usage = sf.boolean("include_usage").value_or(false);
    if (!r.stream) bad_value("stream_options", "is only allowed with stream: true");
  }
  if (auto u = f.get("user"); u != nullptr && !u->is_string()) wrong_type("user", "a string", *u);
}

// max_tokens against the context, once the prompt is known. Default: OpenAI's
// 16 for completions, the rest of the context for chat.
void parse_max_tokens(const Fields& f, const ModelInfo& model, Endpoint ep, ParsedRequest& r) {
  const int64_t prompt = static_cast<int64_t>(r.options.gen.prompt.size());
  if (prompt >= model.context_length)
    bad_value(ep == Endpoint::Chat ? "messages" : "prompt",
              "is " + std::to_string(prompt) + " tokens; the context length is " +
                  std::to_string(model.context_length) + " (room must be left for one new token)",
              "context_length_exceeded");
  std::string key = "max_tokens";
  std::optional<int64_t> max = f.integer("max_tokens");
  if (ep == Endpoint::Chat) {
    if (auto m = f.integer("max_completion_tokens")) {
      max = m;
      key = "max_completion_tokens";
    }
  }
  const int64_t room = model.context_length - prompt;
  const int64_t v = max.value_or(ep == Endpoint::Completions ? std::min<int64_t>(16, room) : room);
  if (v < 1) bad_value(key, "=" + std::to_string(v) + " must be >= 1");
  if (v > room)
    bad_value(key,
              "=" + std::to_string(v) + " plus the prompt's " + std::to_string(prompt) +
                  " tokens exceeds the context length of " + std::to_string(model.context_length),
              "context_length_exceeded");
  r.options.gen.config.max_new_tokens = v;
}

void check_ids(const std::vector<int32_t>& ids, const ModelInfo& model, const std::string& key) {
  for (int32_t id : ids)
    if (id < 0 || id >= model.vocab_size)
      bad_value(key, "holds token id " + std::to_string(id) + ", outside [0, " +
                         std::to_string(model.vocab_size) + ")");
}

std::vector<int32_t> id_list(const json& v, const std::string& key) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const json& e : v) {
    if (!e.is_number_integer()) wrong_type(key, "a list of token ids", v);
    const int64_t id = e.get<int64_t>();
    if (id < INT32_MIN || id > INT32_MAX)
      bad_value(key, "holds token id " + e.dump() + ", out of range");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

const Tokenizer& need_tokenizer(const ModelInfo& model, const std::string& key) {
  if (model.tokenizer == nullptr)
    bad_value(key, "is text, but this model has no tokenizer: send token ids");
  return *model.tokenizer;
}

std::vector<int32_t> completion_prompt(const json* p, const ModelInfo& model) {
  const char* expected = "a string, a list of token ids, or a list of one string";
  if (p == nullptr) throw ApiError(400, "'prompt' is required", "prompt", "missing_field");
  const json* text = nullptr;
  if (p->is_string()) {
    text = p;
  } else if (p->is_array()) {
    if (p->empty()) bad_value("prompt", "is empty", "empty_prompt");
    const json& first = p->front();
    if (first.is_number_integer()) return id_list(*p, "prompt");
    if (first.is_string() || first.is_array()) {
      if (p->size() > 1)
        bad_value("prompt",
                  "holds " + std::to_string(p->size()) +
                      " prompts; batched prompts are not supported (send one request "
                      "per prompt)",
                  "unsupported");
      if (first.is_string())
        text = &first;
      else {
        if (first.empty()) bad_value("prompt", "is empty", "empty_prompt");
        return id_list(first, "prompt");
      }
    } else {
      wrong_type("prompt", expected, *p);
    }
  } else {
    wrong_type("prompt", expected, *p);
  }
  const std::string s = text->get<std::string>();
  if (s.empty()) bad_value("prompt", "is empty", "empty_prompt");
  const Tokenizer& tok = need_tokenizer(model, "prompt");
  // As `nucleus generate -p`: the tokenizer's default BOS.
  return tok.encode(s, tok.add_bos_default());
}

std::vector<ChatMessage> chat_messages(const json* m, const RequestLimits& limits) {
  if (m == nullptr) throw ApiError(400, "'messages' is required", "messages", "missing_field");
  if (!m->is_array()) wrong_type("messages", "a list of messages", *m);
  if (m->empty()) bad_value("messages", "is empty", "empty_prompt");
  if (m->size() > limits.max_messages)
    bad_value("messages", "has " + std::to_string(m->size()) + " messages; at most " +
                              std::to_string(limits.max_messages) + " are allowed");
  std::vector<ChatMessage> out;
  for (const json& msg : *m) {
    if (!msg.is_object()) wrong_type("messages", "a list of {role, content} objects", msg);
    const Fields mf(msg);
    ChatMessage cm;
    const auto role = mf.string("role");
    if (!role || role->empty())
      throw ApiError(400, "every message needs a 'role' string", "messages", "missing_field");
    cm.role = *role;
    if (const json* c = mf.get("content")) {
      if (c->is_string()) {
        cm.content = c->get<std::string>();
      } else if (c->is_array()) {
        // Content parts: only text parts, concatenated.
        for (const json& part : *c) {
          if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
            wrong_type("messages", "content parts of the form {\"type\": \"text\", \"text\": ...}",
                       part);
          if (part["type"].get<std::string>() != "text")
            bad_value("messages",
                      "content part type " + short_dump(part["type"]) +
                          " is not supported (only \"text\")",
                      "unsupported");
          if (!part.contains("text") || !part["text"].is_string())
            wrong_type("messages", "a text part with a 'text' string", part);
          cm.content += part["text"].get<std::string>();
        }
      } else {
        wrong_type("messages", "content as a string or a list of text parts", *c);
      }
    }
    out.push_back(std::move(cm));
  }
  return out;
}

// Last checks once the whole config is known; the config's own validation
// catches combinations (e.g. n > 1 with greedy decoding).
void finish(ParsedRequest& r, const Fields& f, const ModelInfo& model, Endpoint ep) {
  r.endpoint = ep;
  check_ids(r.options.gen.prompt, model, ep == Endpoint::Chat ? "messages" : "prompt");
  parse_max_tokens(f, model, ep, r);
  if (r.logprobs && r.beams)
    bad_value("logprobs", "is not supported with num_beams > 1", "unsupported");
  r.options.top_logprobs = r.logprobs ? r.top_logprobs : 0;
  try {
    r.options.gen.config.validate();
  } catch (const Error& e) {
    throw ApiError(422, e.what(), "", "invalid_value");
  }
}

}  // namespace

void check_model(const json& body, const ModelInfo& model) {
  const Fields f(body);
  if (auto name = f.string("model"); name && *name != model.id)
    throw ApiError(404,
                   "the model '" + short_dump(json(*name)) +
                       "' does not exist; this server serves '" + model.id + "'",
                   "model", "model_not_found");
}

ParsedRequest parse_completion_request(const json& body, const ModelInfo& model,
                                       const RequestLimits& limits, uint64_t fallback_seed) {
  check_model(body, model);
  const Fields f(body);
  ParsedRequest r;
  parse_common(f, model, limits, fallback_seed, r);
  // Completions: "logprobs" is the number of alternatives (0 = only the chosen token's).
  if (auto lp = f.integer("logprobs")) {
    if (*lp < 0 || *lp > limits.max_top_logprobs)
      bad_value("logprobs", "=" + std::to_string(*lp) + " is outside [0, " +
                                std::to_string(limits.max_top_logprobs) + "]");
    r.logprobs = true;
    r.top_logprobs = *lp;
  }
  r.options.gen.prompt = completion_prompt(f.get("prompt"), model);
  finish(r, f, model, Endpoint::Completions);
  return r;
}

ParsedRequest parse_chat_request(const json& body, const ModelInfo& model,
                                 const RequestLimits& limits, uint64_t fallback_seed) {
  check_model(body, model);
  const Fields f(body);
  ParsedRequest r;
  parse_common(f, model, limits, fallback_seed, r);
  r.logprobs = f.boolean("logprobs").value_or(false);
  if (auto top = f.integer("top_logprobs")) {
    if (*top < 0 || *top > limits.max_top_logprobs)
      bad_value("top_logprobs", "=" + std::to_string(*top) + " is outside [0, " +
                                    std::to_string(limits.max_top_logprobs) + "]");
    if (!r.logprobs) bad_value("top_logprobs", "needs logprobs: true");
    r.top_logprobs = *top;
  }
  const std::vector<ChatMessage> messages = chat_messages(f.get("messages"), limits);
  if (model.chat_template == nullptr)
    bad_value("messages",
              "cannot be rendered: the model has no chat template (start the server "
              "with --chat-template)",
              "no_chat_template");
  const Tokenizer& tok = need_tokenizer(model, "messages");
  std::string prompt;
  try {
    prompt = render_chat(*model.chat_template, messages, /*add_generation_prompt=*/true);
  } catch (const Error& e) {
    bad_value("messages", std::string("could not be rendered by the chat template: ") + e.what(),
              "chat_template_error");
  }
  // As apply_chat_template: no special tokens added, the template writes BOS.
  r.options.gen.prompt = tok.encode_with_specials(prompt, false);
  if (r.options.gen.prompt.empty())
    bad_value("messages", "render to an empty prompt", "empty_prompt");
  r.options.gen.config.eos_token_ids = model.chat_eos_ids;
  finish(r, f, model, Endpoint::Chat);
  return r;
}

json tokenize_request(const json& body, const ModelInfo& model) {
  check_model(body, model);
  const Fields f(body);
  std::optional<std::string> text = f.string("prompt");
  if (!text) text = f.string("content");
  if (!text) throw ApiError(400, "'prompt' (or 'content') is required", "prompt", "missing_field");
  const Tokenizer& tok = need_tokenizer(model, "prompt");
  const bool specials = f.boolean("add_special_tokens").value_or(true);
  const std::vector<int32_t> ids = tok.encode(*text, specials && tok.add_bos_default());
  return {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", model.context_length}};
}

json detokenize_request(const json& body, const ModelInfo& model) {
  check_model(body, model);
  const Fields f(body);
  const json* t = f.get("tokens");
  if (t == nullptr) throw ApiError(400, "'tokens' is required", "tokens", "missing_field");
  if (!t->is_array()) wrong_type("tokens", "a list of token ids", *t);
  const std::vector<int32_t> ids = id_list(*t, "tokens");
  check_ids(ids, model, "tokens");
  const Tokenizer& tok = need_tokenizer(model, "tokens");
  return {{"prompt", valid_utf8(tok.decode(ids))}};
}

}  // namespace nucleus::server
