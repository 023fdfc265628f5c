// Chat templates shipped with the reference tokenizers (tests/data/chat/, see
// README there), rendered for fixed conversations. Each expected string was
// derived by reading the template by hand with transformers'
// apply_chat_template semantics (trim_blocks, lstrip_blocks, keep_trailing_newline
// off); the derivation is written beside each expectation.
#include "chat/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "jinja/jinja.h"
#include "util/error.h"

using nucleus::ChatMessage;
using nucleus::ChatTemplate;
using nucleus::Error;
using nucleus::load_chat_template;
using nucleus::render_chat;
using json = nlohmann::ordered_json;

namespace {

std::string config_path(const std::string& name) {
  return std::string(NUCLEUS_TEST_DATA) + "/chat/" + name + ".tokenizer_config.json";
}

// user / assistant / user; the last message has blanks around it so the
// templates that trim (Llama 3) and those that do not (TinyLlama, Qwen3) differ.
const std::vector<ChatMessage> kConv = {
    {"user", "Hello!"},
    {"assistant", "Hi there."},
    {"user", "  How are you?\n"},
};

std::vector<ChatMessage> with_system() {
  std::vector<ChatMessage> v = {{"system", "You are helpful."}};
  v.insert(v.end(), kConv.begin(), kConv.end());
  return v;
}

void expect_error_contains(const std::function<void()>& f,
                           std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message '" << msg << "' lacks '" << p << "'";
  }
}

// ---- TinyLlama-Chat (llama2/) ----------------------------------------------
// Template lines (each ends in "\n"):
//   {% for message in messages %}                 <- trim_blocks eats the "\n"
//   {% if message['role'] == 'user' %}            <- eaten
//   {{ '<|user|>\n' + message['content'] + eos_token }}   <- output + "\n" kept
//   {% elif ... 'system' %} / {{ '<|system|>\n' ... }} / {% elif ... 'assistant' %} / {{
//   '<|assistant|>\n' ... }}
//   {% endif %}                                   <- eaten
//   {% if loop.last and add_generation_prompt %}  <- eaten
//   {{ '<|assistant|>' }}                         <- "<|assistant|>\n"
//   {% endif %}                                   <- eaten
//   {% endfor %}                                  (no trailing newline)
// So each message is "<|role|>\n" + content + "</s>\n", and the prompt adds
// "<|assistant|>\n" after the last one.

TEST(ChatTemplate, TinyLlama) {
  ChatTemplate t = load_chat_template(config_path("llama2"));
  EXPECT_EQ(t.bos_token, "<s>");
  EXPECT_EQ(t.eos_token, "</s>");
  const std::string body =
      "<|user|>\nHello!</s>\n"
      "<|assistant|>\nHi there.</s>\n"
      "<|user|>\n  How are you?\n</s>\n";
  EXPECT_EQ(render_chat(t, kConv, false), body);
  EXPECT_EQ(render_chat(t, kConv, true), body + "<|assistant|>\n");
  const std::string sys = "<|system|>\nYou are helpful.</s>\n";
  EXPECT_EQ(render_chat(t, with_system(), false), sys + body);
  EXPECT_EQ(render_chat(t, with_system(), true), sys + body + "<|assistant|>\n");
}

// ---- Llama 3 Instruct (llama3-instruct/) --------------------------------------
// One line, no newlines outside string literals. Per message:
//   content = '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + (content | trim) +
//   '<|eot_id|>'
// (the filter binds tighter than +), with bos_token prefixed on loop.index0 == 0.
// add_generation_prompt appends '<|start_header_id|>assistant<|end_header_id|>\n\n'.

TEST(ChatTemplate, Llama3Instruct) {
  ChatTemplate t = load_chat_template(config_path("llama3-instruct"));
  EXPECT_EQ(t.bos_token, "<|begin_of_text|>");
  EXPECT_EQ(t.eos_token, "<|eot_id|>");
  const std::string turns =
      "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>";  // trimmed
  const std::string prompt = "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(render_chat(t, kConv, false), "<|begin_of_text|>" + turns);
  EXPECT_EQ(render_chat(t, kConv, true), "<|begin_of_text|>" + turns + prompt);
  const std::string sys =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>";
  EXPECT_EQ(render_chat(t, with_system(), false), sys + turns);
  EXPECT_EQ(render_chat(t, with_system(), true), sys + turns + prompt);
}

// The base Llama 3 config (llama3/) carries the same template except that the
// assistant header is emitted unconditionally (no `if add_generation_prompt`).
TEST(ChatTemplate, Llama3BaseAlwaysAddsAssistantHeader) {
  ChatTemplate t = load_chat_template(config_path("llama3"));
  EXPECT_EQ(t.bos_token, "<|begin_of_text|>");
  EXPECT_EQ(t.eos_token, "<|end_of_text|>");
  const std::string expected =
      "<|begin_of_text|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(render_chat(t, kConv, false), expected);
  EXPECT_EQ(render_chat(t, kConv, true), expected);
}

// ---- Qwen3 (qwen3/) -------------------------------------------------------------
// Every tag opens with `{%-` or `{{-`, which strips the newline and indentation
// before it, so only the expression outputs remain. Without tools:
//   - messages[0] is system -> '<|im_start|>system\n' + content + '<|im_end|>\n'
//   - the reversed scan sets ns.last_query_index to the index of the last user
//     message (kConv: 2; with system: 3)
//   - user (and non-first system) -> '<|im_start|>' + role + '\n' + content + '<|im_end|>\n'
//   - assistant at index0 <= last_query_index -> '<|im_start|>assistant\n' + content,
//     where content loses any '...</think>' prefix; no tool_calls; then '<|im_end|>\n'
//   - add_generation_prompt -> '<|im_start|>assistant\n', plus
//     '<think>\n\n</think>\n\n' only when enable_thinking is defined and false.

const std::string kQwenTurns =
    "<|im_start|>user\nHello!<|im_end|>\n"
    "<|im_start|>assistant\nHi there.<|im_end|>\n"
    "<|im_start|>user\n  How are you?\n<|im_end|>\n";

TEST(ChatTemplate, Qwen3) {
  ChatTemplate t = load_chat_template(config_path("qwen3"));
  EXPECT_EQ(t.bos_token, "");  // null in the config
  EXPECT_EQ(t.eos_token, "<|im_end|>");
  EXPECT_EQ(render_chat(t, kConv, false), kQwenTurns);
  EXPECT_EQ(render_chat(t, kConv, true), kQwenTurns + "<|im_start|>assistant\n");
  const std::string sys = "<|im_start|>system\nYou are helpful.<|im_end|>\n";
  EXPECT_EQ(render_chat(t, with_system(), false), sys + kQwenTurns);
  EXPECT_EQ(render_chat(t, with_system(), true), sys + kQwenTurns + "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3EnableThinkingFalse) {
  ChatTemplate t = load_chat_template(config_path("qwen3"));
  EXPECT_EQ(render_chat(t, kConv, true, json{{"enable_thinking", false}}),
            kQwenTurns + "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // A plain (key-sorted) nlohmann::json converts as well.
  EXPECT_EQ(render_chat(t, kConv, true, nlohmann::json{{"enable_thinking", false}}),
            kQwenTurns + "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // enable_thinking true (or absent) adds nothing.
  EXPECT_EQ(render_chat(t, kConv, true, json{{"enable_thinking", true}}),
            kQwenTurns + "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Qwen3ThinkingInHistory) {
  ChatTemplate t = load_chat_template(config_path("qwen3"));
  const std::string thought = "<think>\nI should greet.\n</think>\n\nHi there.";
  // Assistant before the last user query (index 1 <= 2): content =
  // split('</think>')[-1].lstrip('\n') = "Hi there."; the reasoning is dropped.
  std::vector<ChatMessage> conv = kConv;
  conv[1].content = thought;
  EXPECT_EQ(render_chat(t, conv, false), kQwenTurns);
  // Assistant after the last user query (index 1 > 0) and last: reasoning =
  // split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') = "I should greet.",
  // rendered as '<think>\n' + reasoning + '\n</think>\n\n' + content.
  std::vector<ChatMessage> tail = {{"user", "Hello!"}, {"assistant", thought}};
  EXPECT_EQ(render_chat(t, tail, false),
            "<|im_start|>user\nHello!<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nI should greet.\n</think>\n\nHi there.<|im_end|>\n");
  // Same position without any think block: reasoning_content stays '' and the
  // empty think block is still written because it is loop.last.
  tail[1].content = "Hi there.";
  EXPECT_EQ(render_chat(t, tail, false),
            "<|im_start|>user\nHello!<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nHi there.<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3WithTools) {
  ChatTemplate t = load_chat_template(config_path("qwen3"));
  json tools =
      json::array({{{"type", "function"},
                    {"function", {{"name", "get_time"}, {"parameters", json::object()}}}}});
  // `if tools` branch: system header, no system message (kConv has none), the
  // fixed tool preamble, "\n" + (tool | tojson) per tool, the closing text.
  const std::string expected =
      "<|im_start|>system\n"
      "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
      "\n{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {}}}"
      "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
      "within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
      "<args-json-object>}\n"
      "</tool_call><|im_end|>\n" +
      kQwenTurns + "<|im_start|>assistant\n";
  EXPECT_EQ(render_chat(t, kConv, true, json{{"tools", tools}}), expected);
}

// ---- render_chat from source -------------------------------------------------------

TEST(ChatTemplate, RenderFromSourceMatchesLoaded) {
  std::ifstream in(config_path("llama2"));
  json cfg = json::parse(in);
  ChatTemplate t = load_chat_template(config_path("llama2"));
  EXPECT_EQ(render_chat(cfg["chat_template"].get<std::string>(), kConv, true, "<s>", "</s>"),
            render_chat(t, kConv, true));
}

TEST(ChatTemplate, RaiseExceptionCarriesMessage) {
  const std::string src =
      "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
      "{% endif %}{{ m['content'] }}{% endfor %}";
  EXPECT_EQ(render_chat(src, kConv, false, "<s>", "</s>"), "Hello!Hi there.  How are you?\n");
  expect_error_contains([&] { render_chat(src, with_system(), false, "<s>", "</s>"); },
                        {"Conversation roles must alternate user/assistant/user/assistant/..."});
}

TEST(ChatTemplate, GlobalsAndExtraVars) {
  std::string year = render_chat("{{ strftime_now('%Y') }}", {}, false, "", "");
  ASSERT_EQ(year.size(), 4u);
  for (char c : year) EXPECT_TRUE(c >= '0' && c <= '9') << year;
  // tools and documents are defined (None) as apply_chat_template passes them.
  EXPECT_EQ(render_chat("{{ tools is none }}{{ documents is none }}{{ add_generation_prompt }}", {},
                        true, "", ""),
            "TrueTrueTrue");
  EXPECT_EQ(render_chat("{{ bos_token }}|{{ eos_token }}|{{ custom }}", {}, false, "B", "E",
                        json{{"custom", 7}}),
            "B|E|7");
  expect_error_contains([&] { render_chat("{{ x", {}, false, "", ""); }, {"unterminated"});
  expect_error_contains([&] { render_chat("x", {}, false, "", "", json::array()); },
                        {"JSON object"});
}

// ---- loading -------------------------------------------------------------------------

class ChatLoad : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / ("chat_load_" + name);
    std::filesystem::create_directories(dir);
    std::filesystem::path p = dir / "tokenizer_config.json";
    std::ofstream(p) << text;
    return p.string();
  }
};

TEST(ChatTemplate, RenderErrorsNameTheFile) {
  ChatTemplate t = load_chat_template(config_path("llama3-instruct"));
  // A numeric role makes the template's '<|start_header_id|>' + message['role'] fail.
  expect_error_contains(
      [&] {
        render_chat(t, kConv, false,
                    json{{"messages", json::array({{{"role", 1}, {"content", "x"}}})}});
      },
      {"llama3-instruct.tokenizer_config.json", "chat_template", "line 1",
       "unsupported operand types for +: 'str' and 'int'"});
}

TEST_F(ChatLoad, MistralHasNoTemplate) {
  expect_error_contains([] { load_chat_template(config_path("mistral-v0.1")); },
                        {"mistral-v0.1", "no 'chat_template'"});
}

TEST_F(ChatLoad, TokenObjectsAndTemplateList) {
  std::string p =
      write("objects", R"({"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": {"content": "</s>"},
    "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D{{ eos_token }}"}]})");
  ChatTemplate t = load_chat_template(p);
  EXPECT_EQ(t.bos_token, "<s>");
  EXPECT_EQ(t.eos_token, "</s>");
  EXPECT_EQ(render_chat(t, {}, false), "<s>D</s>");
}

TEST_F(ChatLoad, SiblingJinjaFile) {
  std::string p = write("sibling", R"({"eos_token": "E"})");
  std::ofstream(std::filesystem::path(p).parent_path() / "chat_template.jinja")
      << "{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}\n";
  ChatTemplate t = load_chat_template(p);
  EXPECT_EQ(render_chat(t, {{"user", "x"}}, false), "xE");  // trailing newline dropped
}

TEST_F(ChatLoad, BadConfigs) {
  expect_error_contains(
      [&] {
        load_chat_template(
            write("nolist", R"({"chat_template": [{"name": "tool_use", "template": "T"}]})"));
      },
      {"no template named 'default'", "tool_use"});
  expect_error_contains([&] { load_chat_template(write("badtype", R"({"chat_template": 5})")); },
                        {"'chat_template'", "number"});
  expect_error_contains(
      [&] { load_chat_template(write("badtok", R"({"chat_template": "x", "bos_token": 3})")); },
      {"'bos_token'"});
  expect_error_contains([&] { load_chat_template(write("badjson", R"({"chat_template": )")); },
                        {"invalid JSON"});
  expect_error_contains(
      [&] { load_chat_template(write("badsyntax", R"({"chat_template": "{% if x %}"})")); },
      {"tokenizer_config.json", "chat_template", "endif"});
  expect_error_contains([&] { load_chat_template(write("array", R"([1])")); }, {"JSON object"});
  expect_error_contains([] { load_chat_template("/nonexistent/tokenizer_config.json"); },
                        {"cannot open"});
}

}  // namespace
