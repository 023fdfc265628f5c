#pragma once
// Chat prompts from Hugging Face chat templates, rendered the way
// transformers' apply_chat_template does: Jinja with trim_blocks and
// lstrip_blocks, the variables messages / tools / documents /
// add_generation_prompt / bos_token / eos_token, and the globals
// raise_exception and strftime_now.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nucleus {

namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;
  std::string content;
};

struct ChatTemplate {
  std::string origin;     // file it was loaded from, named in error messages
  std::string source;     // the Jinja template text
  std::string bos_token;  // "" when the config has none
  std::string eos_token;  // "" when the config has none
  std::shared_ptr<const jinja::Template> compiled;  // parsed once at load
};

// Renders `template_src` for `messages`. `extra_vars` (a JSON object) adds or
// overrides template variables, e.g. {"enable_thinking": false} or
// {"tools": [...]}. Throws Error for template syntax/run-time errors and for
// raise_exception() calls in the template (the error carries its message).
std::string render_chat(
    const std::string& template_src, const std::vector<ChatMessage>& messages,
    bool add_generation_prompt, const std::string& bos_token, const std::string& eos_token,
    const nlohmann::ordered_json& extra_vars = nlohmann::ordered_json::object());

// Same with a loaded template (parsed once).
std::string render_chat(
    const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
    const nlohmann::ordered_json& extra_vars = nlohmann::ordered_json::object());

// Reads "chat_template" and the bos/eos special tokens (strings or
// {"content": ...} objects) from a tokenizer_config.json. A chat_template that
// is a list of {"name", "template"} entries yields the one named "default".
// When the config has no chat_template, a sibling chat_template.jinja file is
// used. Throws Error naming the file and field when none is found or a field
// has the wrong type, and for template syntax errors.
ChatTemplate load_chat_template(const std::string& tokenizer_config_json_path);

// A template given as text (e.g. a GGUF file's tokenizer.chat_template, whose
// BOS/EOS texts come from the vocabulary). `origin` names it in errors.
// Throws Error for template syntax errors.
ChatTemplate make_chat_template(std::string source, std::string bos_token, std::string eos_token,
                                std::string origin);

}  // namespace nucleus
