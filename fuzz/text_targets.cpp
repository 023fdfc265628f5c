// Text surfaces: Jinja chat templates (given directly or carried by a GGUF
// file) and generation_config.json.
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "formats/gguf.h"
#include "fuzz/targets.h"
#include "jinja/jinja.h"
#include "sampling/generation_config.h"
#include "sampling/processor.h"
#include "sampling/select.h"
#include "util/error.h"

namespace nucleus::fuzz {

namespace {

// Conversations a chat template sees; the input's first byte picks one, so a
// template is exercised with system prompts, several turns and tool calls.
std::vector<ChatMessage> conversation(uint8_t which) {
  switch (which % 4) {
    case 0:
      return {{"user", "Hello!"}};
    case 1:
      return {
          {"system", "You are terse."}, {"user", "2+2?"}, {"assistant", "4"}, {"user", "and 3+3?"}};
    case 2:
      return {};
    default:
      return {{"user", "héllo {{ }} {% %} <|im_end|>"}, {"assistant", ""}, {"tool", "42"}};
  }
}

nlohmann::ordered_json extra_vars(uint8_t which) {
  nlohmann::ordered_json v = nlohmann::ordered_json::object();
  if (which & 4) v["enable_thinking"] = false;
  if (which & 8) {
    v["tools"] = nlohmann::ordered_json::parse(
        R"([{"type": "function", "function": {"name": "add", "description": "Adds",
            "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}])");
  }
  return v;
}

// As make_chat_template (transformers' trim_blocks + lstrip_blocks), but with
// 10^5 loop iterations instead of 10^7: a template that spends the whole
// default budget legitimately takes ~10 s (more under ASan), which the
// fuzzer would report as a hang. jinja_limits_test covers the default.
ChatTemplate compile(std::string source, std::string bos, std::string eos) {
  jinja::Options o;
  o.trim_blocks = true;
  o.lstrip_blocks = true;
  o.max_loop_iterations = 100'000;
  ChatTemplate t;
  t.origin = "fuzz template";
  t.compiled = std::make_shared<const jinja::Template>(source, o);
  t.source = std::move(source);
  t.bos_token = std::move(bos);
  t.eos_token = std::move(eos);
  return t;
}

void render_all(const ChatTemplate& t, uint8_t which) {
  (void)render_chat(t, conversation(which), (which & 16) != 0, extra_vars(which));
}

}  // namespace

void jinja(Input in) {
  if (in.empty()) return;
  const std::string source(reinterpret_cast<const char*>(in.data() + 1), in.size() - 1);
  try {
    render_all(compile(source, "<s>", "</s>"), in[0]);
  } catch (const Error&) {
  }
}

void gguf_chat_template(Input in) {
  try {
    // As `nucleus chat` does without a tokenizer_config.json: the template
    // and the BOS/EOS texts come from the file's vocabulary.
    GgufFile g("fuzz.gguf", in);
    const Vocab v = gguf_vocab(g);
    if (v.chat_template.empty()) return;
    auto text = [&](int32_t id) { return id >= 0 && id < v.size() ? v.tokens[id] : std::string(); };
    const ChatTemplate t = compile(v.chat_template, text(v.bos_id), text(v.eos_id));
    for (uint8_t which : {0, 1 | 16, 3 | 4 | 8}) render_all(t, which);
  } catch (const Error&) {
  }
}

void generation_config(Input in) {
  const nlohmann::json j = nlohmann::json::parse(in.begin(), in.end(), nullptr, false);
  if (j.is_discarded()) return;  // the front end reports "invalid JSON" itself
  try {
    sampling::GenerationConfig cfg;
    sampling::apply_hf_json(j, cfg, "generation_config.json");
    cfg.validate();
    (void)sampling::to_json(cfg);
    const sampling::ProcessorChain chain = sampling::build_chain(cfg);
    // One step over a small logits row, as generate() does.
    std::vector<float> logits(64);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i % 7) - 3.0f;
    const std::vector<int32_t> ids = {1, 5, 9, 5, 63};
    chain.apply(logits, sampling::make_view(ids, 2));
    const int32_t t =
        cfg.sampling() ? sampling::sample(logits, cfg.seed, 0, 0) : sampling::greedy(logits);
    if (t < 0 || t >= static_cast<int32_t>(logits.size())) invariant_failed("token out of range");
  } catch (const Error&) {
  }
}

}  // namespace nucleus::fuzz
