#include "chat/chat_template.h"

#include <ctime>
#include <filesystem>
#include <utility>

#include "jinja/jinja.h"
#include "util/error.h"
#include "util/text_file.h"

namespace nucleus {

namespace {

// transformers compiles chat templates with these settings.
jinja::Options hf_options() {
  jinja::Options o;
  o.trim_blocks = true;
  o.lstrip_blocks = true;
  return o;
}

std::string render_compiled(const jinja::Template& t, const std::vector<ChatMessage>& messages,
                            bool add_generation_prompt, const std::string& bos_token,
                            const std::string& eos_token,
                            const nlohmann::ordered_json& extra_vars) {
  if (!extra_vars.is_object() && !extra_vars.is_null())
    throw Error("render_chat: extra template variables must be a JSON object, not " +
                std::string(extra_vars.type_name()));
  std::map<std::string, jinja::Value> vars;
  jinja::List msgs;
  for (const auto& m : messages)
    msgs.emplace_back(
        jinja::Dict{{"role", jinja::Value(m.role)}, {"content", jinja::Value(m.content)}});
  vars["messages"] = jinja::Value(std::move(msgs));
  // apply_chat_template passes tools/documents explicitly (None when absent).
  vars["tools"] = jinja::Value(jinja::None{});
  vars["documents"] = jinja::Value(jinja::None{});
  vars["add_generation_prompt"] = jinja::Value(add_generation_prompt);
  vars["bos_token"] = jinja::Value(bos_token);
  vars["eos_token"] = jinja::Value(eos_token);
  vars["strftime_now"] = jinja::Value(jinja::Function([](jinja::Args& a, int line) -> jinja::Value {
    if (a.positional.size() != 1 || !a.positional[0].is_string() || !a.keyword.empty())
      throw Error("jinja: line " + std::to_string(line) +
                  ": strftime_now() takes one format string");
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[512];
    size_t n = std::strftime(buf, sizeof buf, a.positional[0].as_string().c_str(), &tm);
    if (n == 0 && !a.positional[0].as_string().empty())
      throw Error("jinja: line " + std::to_string(line) +
                  ": strftime_now(): format gives no output or is too long");
    return jinja::Value(std::string(buf, n));
  }));
  if (extra_vars.is_object())
    for (auto it = extra_vars.begin(); it != extra_vars.end(); ++it)
      vars[it.key()] = jinja::Value::from_json(it.value());
  return t.render(vars);
}

std::string token_field(const nlohmann::ordered_json& cfg, const char* field,
                        const std::string& path) {
  auto it = cfg.find(field);
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  throw Error(path + ": field '" + field +
              "' must be a string or an object with a string 'content', got " +
              it->dump().substr(0, 80));
}

}  // namespace

std::string render_chat(const std::string& template_src, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const std::string& bos_token,
                        const std::string& eos_token, const nlohmann::ordered_json& extra_vars) {
  jinja::Template t(template_src, hf_options());
  return render_compiled(t, messages, add_generation_prompt, bos_token, eos_token, extra_vars);
}

std::string render_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, const nlohmann::ordered_json& extra_vars) {
  try {
    if (!tmpl.compiled)
      return render_chat(tmpl.source, messages, add_generation_prompt, tmpl.bos_token,
                         tmpl.eos_token, extra_vars);
    return render_compiled(*tmpl.compiled, messages, add_generation_prompt, tmpl.bos_token,
                           tmpl.eos_token, extra_vars);
  } catch (const Error& e) {
    if (tmpl.origin.empty()) throw;
    throw Error(tmpl.origin + ": chat_template: " + e.what());
  }
}

ChatTemplate make_chat_template(std::string source, std::string bos_token, std::string eos_token,
                                std::string origin) {
  ChatTemplate out;
  out.origin = std::move(origin);
  out.source = std::move(source);
  out.bos_token = std::move(bos_token);
  out.eos_token = std::move(eos_token);
  try {
    out.compiled = std::make_shared<const jinja::Template>(out.source, hf_options());
  } catch (const Error& e) {
    throw Error(out.origin + ": chat_template: " + e.what());
  }
  return out;
}

ChatTemplate load_chat_template(const std::string& path) {
  nlohmann::ordered_json cfg;
  try {
    cfg = nlohmann::ordered_json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
  if (!cfg.is_object()) throw Error(path + ": expected a JSON object at top level");
  ChatTemplate out;
  out.origin = path;
  auto it = cfg.find("chat_template");
  if (it != cfg.end() && it->is_string()) {
    out.source = it->get<std::string>();
  } else if (it != cfg.end() && it->is_array()) {
    std::string names;
    bool found = false;
    for (const auto& e : *it) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
          !e.contains("template") || !e["template"].is_string())
        throw Error(path +
                    ": field 'chat_template' list entries must be {\"name\": string, \"template\": "
                    "string}");
      if (e["name"] == "default") {
        out.source = e["template"].get<std::string>();
        found = true;
      }
      names += (names.empty() ? "" : ", ") + e["name"].get<std::string>();
    }
    if (!found)
      throw Error(path + ": field 'chat_template' has no template named 'default' (has: " + names +
                  ")");
  } else if (it != cfg.end() && !it->is_null()) {
    throw Error(path + ": field 'chat_template' must be a string or a list, got " +
                std::string(it->type_name()));
  } else {
    std::filesystem::path sibling =
        std::filesystem::path(path).parent_path() / "chat_template.jinja";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(sibling, ec))
      throw Error(path + ": no 'chat_template' field (and no chat_template.jinja beside it)");
    out.source = read_text_file(sibling.string());
  }
  return make_chat_template(std::move(out.source), token_field(cfg, "bos_token", path),
                            token_field(cfg, "eos_token", path), path);
}

}  // namespace nucleus
