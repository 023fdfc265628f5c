#include "formats/hf_checkpoint.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "formats/safetensors.h"
#include "kernels/dtype.h"
#include "util/error.h"
#include "util/text_file.h"

namespace nucleus {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Typed access to config.json fields, every error naming file and field.
class ConfigReader {
 public:
  ConfigReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }

  int64_t integer(const std::string& key) const {
    check(has(key), path_ + ": missing field '" + key + "'");
    return as_int(j_[key], key);
  }
  int64_t integer(const std::string& key, int64_t fallback) const {
    return has(key) ? as_int(j_[key], key) : fallback;
  }
  double number(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    check(j_[key].is_number(),
          path_ + ": field '" + key + "' must be a number, got " + j_[key].dump());
    return j_[key].get<double>();
  }
  bool boolean(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    check(j_[key].is_boolean(),
          path_ + ": field '" + key + "' must be true or false, got " + j_[key].dump());
    return j_[key].get<bool>();
  }
  int64_t as_int(const json& v, const std::string& key) const {
    check(v.is_number_integer(),
          path_ + ": field '" + key + "' must be an integer, got " + v.dump());
    return v.get<int64_t>();
  }
  const std::string& path() const { return path_; }
  const json& raw() const { return j_; }

 private:
  const json& j_;
  std::string path_;
};

int32_t token_id(const ConfigReader& c, const json& v, const std::string& key) {
  const int64_t id = c.as_int(v, key);
  check(id >= 0 && id <= std::numeric_limits<int32_t>::max(),
        c.path() + ": field '" + key + "' has out-of-range token id " + std::to_string(id));
  return static_cast<int32_t>(id);
}

RopeScaling parse_rope_scaling(const ConfigReader& c) {
  RopeScaling rs;
  if (!c.has("rope_scaling")) return rs;
  const json& j = c.raw()["rope_scaling"];
  check(j.is_object(),
        c.path() + ": field 'rope_scaling' must be an object or null, got " + j.dump());
  std::string type;
  if (j.contains("rope_type") && j["rope_type"].is_string())
    type = j["rope_type"];
  else if (j.contains("type") && j["type"].is_string())
    type = j["type"];
  check(!type.empty(), c.path() + ": field 'rope_scaling' has no 'rope_type' or 'type'");
  if (type == "default") return rs;
  ConfigReader r(j, c.path() + " rope_scaling");
  if (type == "linear") {
    rs.kind = RopeScaling::Kind::Linear;
  } else if (type == "llama3") {
    rs.kind = RopeScaling::Kind::Llama3;
    rs.low_freq_factor = static_cast<float>(r.number("low_freq_factor", rs.low_freq_factor));
    rs.high_freq_factor = static_cast<float>(r.number("high_freq_factor", rs.high_freq_factor));
    rs.original_max_position =
        r.integer("original_max_position_embeddings", rs.original_max_position);
    check(rs.original_max_position > 0 && rs.high_freq_factor > rs.low_freq_factor &&
              rs.low_freq_factor > 0,
          c.path() + ": field 'rope_scaling' has inconsistent llama3 parameters " + j.dump());
  } else {
    throw Error(c.path() + ": field 'rope_scaling' type '" + type +
                "' is not supported (expected linear or llama3)");
  }
  check(r.has("factor"), c.path() + ": field 'rope_scaling' lacks 'factor'");
  rs.factor = static_cast<float>(r.number("factor", 1.0));
  check(rs.factor > 0 && std::isfinite(rs.factor),
        c.path() + ": field 'rope_scaling.factor' must be positive, got " + j["factor"].dump());
  return rs;
}

ModelConfig parse_config(const json& j, const std::string& path, std::string* torch_dtype,
                         std::string* hf_arch) {
  check(j.is_object(), path + ": not a JSON object");
  ConfigReader c(j, path);
  check(c.has("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
            j["architectures"][0].is_string(),
        path + ": missing field 'architectures'");
  const std::string arch = j["architectures"][0];
  *hf_arch = arch;
  const bool qwen2 = arch == "Qwen2ForCausalLM";
  const bool qwen3 = arch == "Qwen3ForCausalLM";
  check(arch == "LlamaForCausalLM" || arch == "MistralForCausalLM" || qwen2 || qwen3,
        path + ": field 'architectures' names unsupported architecture '" + arch +
            "' (expected LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM or "
            "Qwen3ForCausalLM)");
  // Qwen's sliding-window attention is off in every released config; the
  // engine attends to the whole context, so refuse a config that turns it on.
  check(!c.boolean("use_sliding_window", false),
        path + ": field 'use_sliding_window' is true; sliding-window attention is not supported");

  ModelConfig cfg;
  cfg.arch = qwen2 ? "qwen2" : qwen3 ? "qwen3" : "llama";
  cfg.format = "safetensors";
  cfg.rope_layout = RopeLayout::Half;
  cfg.dim = c.integer("hidden_size");
  cfg.ffn_dim = c.integer("intermediate_size");
  cfg.n_layers = c.integer("num_hidden_layers");
  cfg.n_heads = c.integer("num_attention_heads");
  check(cfg.n_heads > 0, path + ": field 'num_attention_heads' must be positive, got " +
                             std::to_string(cfg.n_heads));
  cfg.n_kv_heads = c.integer("num_key_value_heads", cfg.n_heads);
  // transformers' defaults when a field is absent (Qwen3Config: head_dim 128).
  cfg.head_dim = c.integer("head_dim", qwen3 ? 128 : cfg.dim / cfg.n_heads);
  cfg.vocab_size = c.integer("vocab_size");
  cfg.context_length = c.integer("max_position_embeddings", qwen2 || qwen3 ? 32768 : 2048);
  cfg.rms_eps = static_cast<float>(c.number("rms_norm_eps", 1e-6));
  cfg.rope_theta = static_cast<float>(c.number("rope_theta", 10000.0));
  // transformers 5 moves rope_theta into rope_parameters.
  if (!c.has("rope_theta") && c.has("rope_parameters") && j["rope_parameters"].is_object()) {
    ConfigReader rp(j["rope_parameters"], path + " rope_parameters");
    cfg.rope_theta = static_cast<float>(rp.number("rope_theta", 10000.0));
  }
  cfg.rope_scaling = parse_rope_scaling(c);
  cfg.tied_embeddings = c.boolean("tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases; Llama/Mistral only with attention_bias.
  cfg.attn_bias = qwen2 ? true : c.boolean("attention_bias", false);
  // Qwen3 always normalises each q/k head (self_attn.q_norm / k_norm).
  cfg.qk_norm = qwen3;
  cfg.mlp_bias = c.boolean("mlp_bias", false);
  if (c.has("bos_token_id")) cfg.bos_id = token_id(c, j["bos_token_id"], "bos_token_id");
  if (c.has("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_array()) {
      for (const json& v : e) cfg.eos_ids.push_back(token_id(c, v, "eos_token_id"));
    } else {
      cfg.eos_ids.push_back(token_id(c, e, "eos_token_id"));
    }
  }
  for (const char* key : {"torch_dtype", "dtype"})
    if (c.has(key) && j[key].is_string()) {
      *torch_dtype = j[key];
      break;
    }
  try {
    cfg.validate();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  check(cfg.head_dim * cfg.n_heads > 0 && cfg.head_dim <= cfg.dim * 4,
        path + ": field 'head_dim' " + std::to_string(cfg.head_dim) + " is implausible");
  return cfg;
}

// Shard file names come from the index; keep them inside the checkpoint.
void check_shard_name(const std::string& name, const std::string& index_path) {
  check(!name.empty() && name.find('/') == std::string::npos &&
            name.find('\\') == std::string::npos && name != "." && name != "..",
        index_path + ": weight_map names shard '" + name + "', not a file in the directory");
}

constexpr std::pair<const char*, const char*> kLayerNames[] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_proj.bias", "ffn_gate.bias"},
    {"mlp.up_proj.bias", "ffn_up.bias"},
    {"mlp.down_proj.bias", "ffn_down.bias"},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
};

std::string layer_suffix(const std::string& rest) {
  for (const auto& [hf, gg] : kLayerNames)
    if (rest == hf) return gg;
  return "";
}

// The inverse of hf_to_gguf_name, for error messages.
std::string gguf_to_hf_name(const std::string& n) {
  if (n == "token_embd.weight") return "model.embed_tokens.weight";
  if (n == "output_norm.weight") return "model.norm.weight";
  if (n == "output.weight") return "lm_head.weight";
  if (n.rfind("blk.", 0) == 0) {
    const size_t dot = n.find('.', 4);
    if (dot != std::string::npos)
      for (const auto& [hf, gg] : kLayerNames)
        if (n.substr(dot + 1) == gg) return "model.layers." + n.substr(4, dot - 4) + "." + hf;
  }
  return n;
}

// The tensors a config implies, with their ggml-order shapes.
std::map<std::string, std::vector<int64_t>> expected_tensors(const ModelConfig& c) {
  std::map<std::string, std::vector<int64_t>> m;
  m["token_embd.weight"] = {c.dim, c.vocab_size};
  m["output_norm.weight"] = {c.dim};
  if (!c.tied_embeddings) m["output.weight"] = {c.dim, c.vocab_size};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    m[b + "attn_norm.weight"] = {c.dim};
    m[b + "ffn_norm.weight"] = {c.dim};
    m[b + "attn_q.weight"] = {c.dim, c.q_dim()};
    m[b + "attn_k.weight"] = {c.dim, c.kv_dim()};
    m[b + "attn_v.weight"] = {c.dim, c.kv_dim()};
    m[b + "attn_output.weight"] = {c.q_dim(), c.dim};
    m[b + "ffn_gate.weight"] = {c.dim, c.ffn_dim};
    m[b + "ffn_up.weight"] = {c.dim, c.ffn_dim};
    m[b + "ffn_down.weight"] = {c.ffn_dim, c.dim};
    if (c.attn_bias) {
      m[b + "attn_q.bias"] = {c.q_dim()};
      m[b + "attn_k.bias"] = {c.kv_dim()};
      m[b + "attn_v.bias"] = {c.kv_dim()};
      // Llama's attention_bias also biases o_proj; Qwen2 has no o_proj bias.
      if (c.arch != "qwen2") m[b + "attn_output.bias"] = {c.dim};
    }
    if (c.qk_norm) {
      m[b + "attn_q_norm.weight"] = {c.head_dim};
      m[b + "attn_k_norm.weight"] = {c.head_dim};
    }
    if (c.mlp_bias) {
      m[b + "ffn_gate.bias"] = {c.ffn_dim};
      m[b + "ffn_up.bias"] = {c.ffn_dim};
      m[b + "ffn_down.bias"] = {c.dim};
    }
  }
  return m;
}

std::string shape_str(const std::vector<int64_t>& s) {
  TensorView v;
  v.shape = s;
  return v.shape_str();
}

}  // namespace

std::string hf_to_gguf_name(const std::string& n) {
  if (n == "model.embed_tokens.weight") return "token_embd.weight";
  if (n == "model.norm.weight") return "output_norm.weight";
  if (n == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (n.rfind(prefix, 0) != 0) return "";
  size_t i = prefix.size();
  size_t j = i;
  while (j < n.size() && j - i < 6 && n[j] >= '0' && n[j] <= '9') ++j;
  if (j == i || j >= n.size() || n[j] != '.' || (n[i] == '0' && j - i > 1)) return "";
  const std::string suffix = layer_suffix(n.substr(j + 1));
  if (suffix.empty()) return "";
  return "blk." + n.substr(i, j - i) + "." + suffix;
}

ModelFile load_hf_checkpoint(const std::string& dir) {
  std::error_code ec;
  check(fs::is_directory(dir, ec), dir + ": not a directory");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  check(fs::is_regular_file(config_path, ec),
        dir + ": missing config.json (not a Hugging Face checkpoint directory)");

  ModelFile model;
  std::string torch_dtype;
  std::string hf_arch;
  const json config_json = read_json_file(config_path);
  model.config = parse_config(config_json, config_path, &torch_dtype, &hf_arch);
  const ModelConfig& cfg = model.config;

  // Which shard holds which tensor.
  std::map<std::string, std::string> shard_of;  // hf name -> shard file name
  std::vector<std::string> shards;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::is_regular_file(index, ec)) {
    const json idx = read_json_file(index.string());
    check(idx.is_object() && idx.contains("weight_map") && idx["weight_map"].is_object(),
          index.string() + ": missing object 'weight_map'");
    std::set<std::string> seen;
    for (const auto& [name, file] : idx["weight_map"].items()) {
      check(file.is_string(),
            index.string() + ": weight_map entry '" + name + "' is not a file name");
      const std::string f = file.get<std::string>();
      check_shard_name(f, index.string());
      shard_of[name] = f;
      if (seen.insert(f).second) shards.push_back(f);
    }
  } else if (fs::is_regular_file(single, ec)) {
    shards.push_back("model.safetensors");
  } else {
    throw Error(dir + ": missing model.safetensors and model.safetensors.index.json");
  }

  const auto expected = expected_tensors(cfg);
  std::map<std::string, std::string> source_of;  // gguf name -> "file: hf name" for messages
  for (const std::string& shard : shards) {
    const std::string shard_path = (fs::path(dir) / shard).string();
    SafetensorsFile st = read_safetensors(shard_path);
    for (auto& [hf_name, view] : st.tensors) {
      if (!shard_of.empty()) {
        auto it = shard_of.find(hf_name);
        // A tensor the index assigns elsewhere (or not at all) is not used.
        if (it == shard_of.end() || it->second != shard) continue;
      }
      // Rotary tables some older checkpoints store are recomputed, never read.
      if (hf_name.ends_with("rotary_emb.inv_freq")) continue;
      // A tied checkpoint may still carry a copy of the embedding as lm_head.
      if (hf_name == "lm_head.weight" && cfg.tied_embeddings) continue;
      const std::string name = hf_to_gguf_name(hf_name);
      check(!name.empty(), shard_path + ": unknown tensor '" + hf_name + "'");
      auto exp = expected.find(name);
      check(exp != expected.end(), shard_path + ": tensor '" + hf_name +
                                       "' does not belong to a model with this config.json (" +
                                       std::to_string(cfg.n_layers) + " layers)");
      if (view.shape != exp->second) {
        // Report in the checkpoint's own row-major order.
        std::vector<int64_t> have(view.shape.rbegin(), view.shape.rend());
        std::vector<int64_t> want(exp->second.rbegin(), exp->second.rend());
        throw Error(shard_path + ": tensor '" + hf_name + "' has shape " + shape_str(have) +
                    " but config.json implies " + shape_str(want));
      }
      check(!model.tensors.contains(name), shard_path + ": tensor '" + hf_name +
                                               "' appears twice (also in " + source_of[name] + ")");
      source_of[name] = shard_path;
      view.name = name;
      model.tensors.emplace(name, view);
    }
    model.mappings.push_back(st.mapping);
    for (auto& o : st.owned) model.owned.push_back(o);
  }

  for (const auto& [name, shape] : expected) {
    if (model.tensors.contains(name)) continue;
    throw Error(dir + ": missing tensor '" + gguf_to_hf_name(name) + "' (" + name + ")");
  }

  model.metadata.emplace_back("hf.architecture", hf_arch);
  if (!torch_dtype.empty()) model.metadata.emplace_back("hf.torch_dtype", torch_dtype);
  const fs::path tok = fs::path(dir) / "tokenizer.json";
  if (fs::is_regular_file(tok, ec)) model.metadata.emplace_back("hf.tokenizer_json", tok.string());
  const fs::path tok_cfg = fs::path(dir) / "tokenizer_config.json";
  if (fs::is_regular_file(tok_cfg, ec))
    model.metadata.emplace_back("hf.tokenizer_config_json", tok_cfg.string());
  return model;
}

bool is_quantizable(const TensorView& t) {
  return t.shape.size() == 2 && t.shape[0] % kernels::kQBlock == 0 && t.shape[1] > 0;
}

void quantize_weights(ModelFile& model, DType type) {
  for (auto& [name, view] : model.tensors) {
    if (!is_quantizable(view) || view.type == type) continue;
    const int64_t cols = view.cols();
    const int64_t rows = view.rows();
    const size_t in_row = row_bytes(view.type, cols);
    const size_t out_row = row_bytes(type, cols);
    auto buf = std::make_shared<std::vector<uint8_t>>(out_row * static_cast<size_t>(rows));
    std::vector<float> tmp(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      kernels::dequantize_row(view.type, view.data + r * in_row, tmp.data(), cols);
      kernels::quantize_row(type, tmp.data(), buf->data() + r * out_row, cols);
    }
    view.type = type;
    view.data = buf->data();
    view.nbytes = buf->size();
    model.owned.push_back(std::move(buf));
  }
}

}  // namespace nucleus
