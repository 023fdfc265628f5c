// nucleus chat: render the model's chat template (Jinja, as transformers'
// apply_chat_template would) for the conversation so far, generate the
// assistant's reply, stream it. Interactive on stdin, or one turn with --message.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "chat/chat_template.h"
#include "cli/common.h"
#include "cli/generation_flags.h"
#include "generate/generator.h"
#include "util/error.h"

namespace nucleus::cli {
namespace {

struct ChatOpts {
  ModelOptions model;
  GenerationFlags gen;
  std::string message;
  std::string system;
  std::string template_config;
  bool show_prompt = false;
};

// The tokenizer_config.json to read the template from: --template-config, or
// the one beside the model; "" when neither exists.
std::string find_template_config(const ChatOpts& o) {
  if (!o.template_config.empty()) return o.template_config;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path model(o.model.model_path());
  const fs::path dir = fs::is_directory(model, ec) ? model : model.parent_path();
  const fs::path cfg = dir / "tokenizer_config.json";
  return fs::is_regular_file(cfg, ec) ? cfg.string() : "";
}

// Without a tokenizer_config.json, a GGUF file's own tokenizer.chat_template,
// with BOS/EOS texts taken from its vocabulary.
ChatTemplate template_from_model(const ChatOpts& o, const ModelFile& f) {
  const Vocab& v = f.vocab;
  if (v.chat_template.empty())
    throw Error("no chat template: " + o.model.model_path() +
                " has no tokenizer.chat_template and there is no tokenizer_config.json beside "
                "it (give one with --template-config)");
  auto text = [&](int32_t id) { return id >= 0 && id < v.size() ? v.tokens[id] : std::string(); };
  return make_chat_template(v.chat_template, text(v.bos_id), text(v.eos_id),
                            o.model.model_path() + ": tokenizer.chat_template");
}

// Token id of a special token's text, or -1.
int32_t special_id(const Tokenizer& tok, const std::string& text) {
  if (text.empty()) return -1;
  const std::vector<int32_t> ids = tok.encode_with_specials(text, false);
  return ids.size() == 1 ? ids[0] : -1;
}

int run_chat(ChatOpts& o) {
  sampling::GenerationConfig cfg = o.gen.resolve(o.model.model_path());
  // A template file is read before the model so that its errors come first.
  const std::string config = find_template_config(o);
  std::optional<ChatTemplate> from_config;
  if (!config.empty()) from_config = load_chat_template(config);
  LoadedModel m = load_model(o.model);
  const ChatTemplate tmpl = from_config ? *from_config : template_from_model(o, *m.file);
  const Tokenizer& tok = m.need_tokenizer();
  // The turn ends at the template's EOS token too (e.g. <|eot_id|>, <|im_end|>).
  const int32_t eot = special_id(tok, tmpl.eos_token);
  if (eot >= 0 && cfg.eos_token_ids.empty()) {
    cfg.eos_token_ids = m.file->config.eos_ids;
    if (cfg.eos_token_ids.empty() && tok.eos_id() >= 0) cfg.eos_token_ids.push_back(tok.eos_id());
  }
  if (eot >= 0 &&
      std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), eot) == cfg.eos_token_ids.end())
    cfg.eos_token_ids.push_back(eot);

  EngineOptions eo;
  eo.threads = o.model.thread_count();
  eo.kv_type = parse_kv_type(o.model.kv_type);
  eo.bf16_dot = kernels::parse_bf16_dot(o.model.bf16_dot.c_str());
  eo.max_sequences = std::max<int64_t>(cfg.num_beams, cfg.num_return_sequences) * 2 + 1;
  Engine engine(m.model, eo);

  std::vector<ChatMessage> history;
  if (!o.system.empty()) history.push_back({"system", o.system});
  auto turn = [&](const std::string& user) {
    history.push_back({"user", user});
    const std::string prompt = render_chat(tmpl, history, /*add_generation_prompt=*/true);
    if (o.show_prompt) std::fprintf(stderr, "--- prompt ---\n%s\n--- end ---\n", prompt.c_str());
    GenerateRequest req;
    // apply_chat_template tokenizes without adding special tokens: the
    // template writes BOS itself where the model wants one.
    req.prompt = tok.encode_with_specials(prompt, false);
    req.config = cfg;
    const GenerateResult res = generate(engine, &tok, req, [](int64_t, const std::string& t) {
      std::fputs(t.c_str(), stdout);
      std::fflush(stdout);
    });
    std::fputs("\n", stdout);
    history.push_back({"assistant", res.sequences.front().text});
  };
  if (!o.message.empty()) {
    turn(o.message);
    return 0;
  }
  std::string line;
  std::fprintf(stderr, "chat with %s (empty line or EOF ends)\n", o.model.model_path().c_str());
  while (std::fputs("> ", stderr), std::getline(std::cin, line) && !line.empty()) turn(line);
  return 0;
}

}  // namespace

Command add_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOpts>();
  CLI::App* sub = app.add_subcommand("chat", "chat with a model through its chat template");
  o->model.add_to(sub);
  o->model.add_kv_type_to(sub);
  sub->add_option("--message", o->message, "one user turn; without it, read turns from stdin");
  sub->add_option("--system", o->system, "system message");
  sub->add_option("--template-config", o->template_config,
                  "tokenizer_config.json holding chat_template (default: beside the model, else "
                  "the GGUF file's tokenizer.chat_template)");
  sub->add_flag("--show-prompt", o->show_prompt, "print the rendered prompt on stderr");
  o->gen.add_to(sub);
  return {sub, [o] { return run_chat(*o); }};
}

}  // namespace nucleus::cli
