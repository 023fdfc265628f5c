// Writes the seed corpus of every fuzz target, derived from the real files in
// tests/data (small slices of them, so that mutations stay fast):
//   nucleus_fuzz_seeds TESTS_DATA_DIR OUT_DIR   ->   OUT_DIR/<target>/<seed>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../tests/formats_test_util.h"
#include "formats/gguf.h"
#include "fuzz/targets.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using nucleus::testing::GgufBuilder;

namespace {

std::string data_dir, out_dir;

std::string slurp(const std::string& rel) {
  std::ifstream f(data_dir + "/" + rel, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + rel);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(out_dir + "/" + target);
  std::ofstream(out_dir + "/" + target + "/" + name, std::ios::binary) << bytes;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += nucleus::fuzz::kSeparator;
    out += parts[i];
  }
  return out;
}

std::string bytes_of(const std::vector<uint8_t>& b) {
  return std::string(b.begin(), b.end());
}

// The first n tokens of a real GGUF vocabulary (plus its merges among them),
// added to g under the same keys.
void add_vocab_slice(GgufBuilder& g, const std::string& gguf_rel, size_t n) {
  const nucleus::GgufFile f(data_dir + "/" + gguf_rel);
  std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  tokens.resize(std::min(tokens.size(), n));
  g.add_string("tokenizer.ggml.model", f.get_string("tokenizer.ggml.model"));
  if (auto pre = f.find_string("tokenizer.ggml.pre")) g.add_string("tokenizer.ggml.pre", *pre);
  g.add_string_array("tokenizer.ggml.tokens", tokens);
  if (f.has("tokenizer.ggml.scores")) {
    std::vector<float> s = f.get_float_array("tokenizer.ggml.scores");
    s.resize(tokens.size());
    g.add_f32_array("tokenizer.ggml.scores", s);
  }
  if (f.has("tokenizer.ggml.token_type")) {
    std::vector<int64_t> t = f.get_int_array("tokenizer.ggml.token_type");
    t.resize(tokens.size());
    g.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(t.begin(), t.end()));
  }
  if (f.has("tokenizer.ggml.merges")) {
    std::vector<std::string> m = f.get_string_array("tokenizer.ggml.merges");
    m.resize(std::min<size_t>(m.size(), n / 2));
    g.add_string_array("tokenizer.ggml.merges", m);
  }
  for (const char* k : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"})
    if (auto id = f.find_int(k); id && *id < static_cast<int64_t>(tokens.size()))
      g.add_u32(k, static_cast<uint32_t>(*id));
}

std::vector<std::string> chat_templates() {
  std::vector<std::string> out;
  for (const char* f :
       {"chat/llama2.tokenizer_config.json", "chat/llama3-instruct.tokenizer_config.json",
        "chat/qwen3.tokenizer_config.json"}) {
    const auto j = ordered_json::parse(slurp(f));
    if (j.contains("chat_template") && j["chat_template"].is_string())
      out.push_back(j["chat_template"].get<std::string>());
  }
  return out;
}

void gguf_seeds() {
  seed("gguf", "tiny_llama", bytes_of(nucleus::testing::tiny_llama().build()));
  seed("gguf", "tiny_llama_vocab_only", bytes_of(nucleus::testing::tiny_llama(false).build()));
  const std::pair<const char*, const char*> vocabs[] = {
      {"spm", "tokenizer/ggml-vocab-llama-spm.gguf"},
      {"gpt2", "bpe/ggml-vocab-gpt-2.gguf"},
      {"phi3", "tokenizer/ggml-vocab-phi-3.gguf"}};
  const std::vector<std::string> templates = chat_templates();
  for (const auto& [name, rel] : vocabs) {
    GgufBuilder g;
    g.add_string("general.architecture", "llama");
    add_vocab_slice(g, rel, 300);
    seed("gguf", std::string("vocab_") + name, bytes_of(g.build()));
  }
  for (size_t i = 0; i < templates.size(); ++i) {
    GgufBuilder g;
    g.add_string("general.architecture", "llama");
    add_vocab_slice(g, "tokenizer/ggml-vocab-llama-spm.gguf", 64);
    g.add_string("tokenizer.chat_template", templates[i]);
    seed("gguf_chat_template", "template_" + std::to_string(i), bytes_of(g.build()));
  }
}

void model_file_seeds() {
  const std::string st = slurp("hf/stas-tiny-random-llama-2/model.safetensors");
  seed("safetensors", "stas_tiny_random_llama_2", st);
  // A small hand-made file: two F16/BF16 tensors, contiguous, with metadata.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}})";
  std::string small(8, '\0');
  for (int i = 0; i < 8; ++i) small[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  small += header + std::string(14, '\x3c');
  seed("safetensors", "small", small);
  seed("hf_checkpoint", "stas_tiny_random_llama_2",
       join({slurp("hf/stas-tiny-random-llama-2/config.json"), st}));

  // llama2.c: a tiny model (dim 8, hidden 16, 1 layer, 2 heads, 1 KV head,
  // vocab 512 to match tok512.bin, seq_len 4, separate classifier).
  const int32_t dim = 8, hidden = 16, layers = 1, heads = 2, kv = 1, vocab = 512, seq = 4;
  const int64_t hs = dim / heads;
  const int64_t floats =
      vocab * dim +
      layers * (dim + dim * dim + 2 * dim * kv * hs + dim * dim + dim + 3 * dim * hidden) + dim +
      seq * hs + vocab * dim;
  std::string bin;
  for (int32_t v : {dim, hidden, layers, heads, kv, -vocab, seq})
    bin.append(reinterpret_cast<const char*>(&v), 4);
  for (int64_t i = 0; i < floats; ++i) {
    const float x = static_cast<float>(i % 13) * 0.01f;
    bin.append(reinterpret_cast<const char*>(&x), 4);
  }
  seed("llama2c", "tiny_tok512", join({bin, slurp("tokenizer/tok512.bin")}));
}

// A slice of a real tokenizer.json: the first n vocabulary entries, the
// merges among them, and the first added tokens renumbered after them.
std::string tokenizer_slice(const std::string& rel, size_t n) {
  ordered_json j = ordered_json::parse(slurp(rel));
  ordered_json& model = j["model"];
  ordered_json vocab = ordered_json::object();
  std::set<std::string> kept;
  for (auto& [tok, id] : model["vocab"].items()) {
    if (id.get<int64_t>() < static_cast<int64_t>(n)) {
      vocab[tok] = id;
      kept.insert(tok);
    }
  }
  model["vocab"] = vocab;
  if (model.contains("merges")) {
    ordered_json merges = ordered_json::array();
    for (const auto& m : model["merges"]) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos) continue;
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      }
      if (kept.count(a) && kept.count(b) && kept.count(a + b)) merges.push_back(m);
    }
    model["merges"] = merges;
  }
  ordered_json added = ordered_json::array();
  int64_t next = static_cast<int64_t>(vocab.size());
  if (j.contains("added_tokens")) {
    for (auto t : j["added_tokens"]) {
      if (added.size() >= 6) break;
      if (t["id"].get<int64_t>() < static_cast<int64_t>(n)) {
        added.push_back(t);
      } else {
        t["id"] = next++;
        added.push_back(t);
      }
    }
  }
  j["added_tokens"] = added;
  return j.dump();
}

std::vector<std::string> vocab_test_strings() {
  const std::string s = slurp("bpe/ggml-vocab-llama-bpe.gguf.inp");
  std::vector<std::string> out;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < s.size();) {
    size_t at = s.find(sep, pos);
    if (at == std::string::npos) at = s.size();
    out.push_back(s.substr(pos, at - pos));
    pos = at + sep.size();
  }
  return out;
}

void tokenizer_seeds() {
  const std::vector<std::string> texts = vocab_test_strings();
  const std::pair<const char*, const char*> toks[] = {
      {"llama3", "bpe/llama3/tokenizer.json"},
      {"qwen3", "bpe/qwen3/tokenizer.json"},
      {"llama2", "bpe/llama2/tokenizer.json"},
      {"mistral", "bpe/mistral-v0.1/tokenizer.json"},
      {"stories260K", "bpe/stories260K-hf/tokenizer.json"}};
  for (const auto& [name, rel] : toks)
    seed("tokenizer_json", name, join({tokenizer_slice(rel, 400), texts[texts.size() / 2]}));
  for (size_t i = 0; i < texts.size(); ++i)
    for (char v = 0; v < 4; ++v)
      seed("encode", std::to_string(i) + "_" + char('a' + v), v + texts[i]);
  // Ids from the llama.cpp test vectors of the same vocabularies.
  const std::pair<int, const char*> outs[] = {{0, "bpe/ggml-vocab-llama-bpe.gguf.out"},
                                              {1, "bpe/ggml-vocab-qwen2.gguf.out"},
                                              {2, "bpe/ggml-vocab-llama-spm.gguf.out"},
                                              {3, "bpe/ggml-vocab-llama-spm.gguf.out"}};
  for (const auto& [v, rel] : outs) {
    std::istringstream lines(slurp(rel));
    std::string line;
    for (int n = 0; std::getline(lines, line); ++n) {
      std::string in(1, static_cast<char>(v));
      std::istringstream ids(line);
      for (int64_t id; ids >> id;) {
        in += static_cast<char>(id & 0xff);
        in += static_cast<char>((id >> 8) & 0xff);
        in += static_cast<char>((id >> 16) & 0x7f);
      }
      seed("detokenize", std::to_string(v) + "_" + std::to_string(n), in);
    }
  }
}

void text_seeds() {
  const std::vector<std::string> templates = chat_templates();
  for (size_t i = 0; i < templates.size(); ++i)
    for (uint8_t sel : {0, 1 | 16, 3 | 4 | 8})
      seed("jinja", "template_" + std::to_string(i) + "_" + std::to_string(sel),
           std::string(1, static_cast<char>(sel)) + templates[i]);
  const char* small[] = {
      "{% for m in messages %}{{ loop.index }}:{{ m.role|upper }} {{ m['content']|trim }}\n{% "
      "endfor %}",
      "{% macro f(x, y=2) %}{{ x * y }}{% endmacro %}{{ f(3) }}{{ f(y=4, x=1) }}{% set ns = "
      "namespace(a=0) %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}",
      "{{ 'ab' * 3 }}{{ [1,2,3][::-1]|join(',') }}{{ {'a': 1}|tojson }}{{ messages|length }}"
      "{% if messages and messages[0].role == 'user' %}u{% elif tools %}t{% else %}x{% endif %}",
      "{%- for m in messages|selectattr('role', 'equalto', 'user') -%}{{ m.content|replace('l', "
      "'L') ~ '|' }}{%- endfor -%}{{ raise_exception('no') if false }}",
  };
  for (size_t i = 0; i < std::size(small); ++i)
    seed("jinja", "small_" + std::to_string(i), std::string(1, '\x01') + small[i]);

  // The HTTP API: first byte 0 = /v1/completions, 1 = /v1/chat/completions.
  seed("openai_request", "completion",
       std::string(1, '\0') +
           R"({"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 16,
               "temperature": 0.8, "top_p": 0.9, "n": 2, "stop": [".", "!"], "seed": 3,
               "logprobs": 2, "logit_bias": {"5": -100}, "stream": true,
               "stream_options": {"include_usage": true}, "presence_penalty": 0.5})");
  seed("openai_request", "ids_beams",
       std::string(1, '\0') +
           R"({"prompt": [1, 403, 407], "max_tokens": 8, "num_beams": 3, "n": 2,
               "length_penalty": 0.8, "early_stopping": "never", "top_k": 20, "min_p": 0.05,
               "repetition_penalty": 1.2, "speculative": "lookup", "draft_max": 4})");
  seed("openai_request", "chat",
       std::string(1, '\1') +
           R"({"model": "stories260K", "messages": [{"role": "system", "content": "Be brief."},
               {"role": "user", "content": "Tell me a story."}], "max_completion_tokens": 12,
               "logprobs": true, "top_logprobs": 3, "temperature": 0, "user": "u"})");
  seed("generation_config", "stories260K", slurp("hf/stories260K-hf/generation_config.json"));
  seed("generation_config", "sampling",
       R"({"do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.9, "min_p": 0.05,
           "typical_p": 0.95, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2,
           "bad_words_ids": [[5], [9, 10]], "sequence_bias": [[[3], -1.5]], "eos_token_id": [2, 7],
           "suppress_tokens": [4], "min_new_tokens": 2, "seed": 11})");
  seed("generation_config", "beams",
       R"({"num_beams": 4, "num_return_sequences": 2, "length_penalty": 0.8,
           "early_stopping": "never", "epsilon_cutoff": 0.001, "eta_cutoff": 0.002,
           "sequence_bias": {"5,6": 2.0}, "forced_eos_token_id": 2, "max_new_tokens": 16})");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TESTS_DATA_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  data_dir = argv[1];
  out_dir = argv[2];
  try {
    gguf_seeds();
    model_file_seeds();
    tokenizer_seeds();
    text_seeds();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
