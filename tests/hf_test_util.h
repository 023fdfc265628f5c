#pragma once
// Test-only helpers for the HF checkpoint tests: write safetensors files and
// config.json by hand (so each test can plant exactly one defect) and scratch
// directories.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nucleus::hftest {

// Removes this process's scratch directories when the test binary exits.
struct ScratchRoot {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("nucleus_hf_test_" + std::to_string(::getpid()));
  ~ScratchRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline std::string scratch_dir(const std::string& name) {
  static ScratchRoot root;
  const auto dir = root.path / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A safetensors file from a header JSON and a data section, with the header
// length field either honest or overridden.
inline std::string safetensors_bytes(const std::string& header, const std::string& data,
                                     int64_t length_override = -1) {
  uint64_t n = length_override >= 0 ? static_cast<uint64_t>(length_override) : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

struct StTensor {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;  // row-major (HF) order
  std::vector<float> values;   // F32 only; zeros when empty
};

// An honest safetensors file holding the tensors back to back.
inline std::string make_safetensors(const std::vector<StTensor>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  h["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (const StTensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const size_t elem = t.dtype == "F32" || t.dtype == "I32" ? 4 : t.dtype == "I64" ? 8 : 2;
    std::string bytes(static_cast<size_t>(n) * elem, '\0');
    if (!t.values.empty()) std::memcpy(bytes.data(), t.values.data(), bytes.size());
    h[t.name] = {{"dtype", t.dtype},
                 {"shape", t.shape},
                 {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  return safetensors_bytes(h.dump(), data);
}

// A tiny but complete LlamaForCausalLM: hidden 32, 2 heads (head_dim 16),
// 1 KV head, FFN 64, vocab 8, 1 layer, untied.
inline nlohmann::json tiny_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", 32},
          {"intermediate_size", 64},
          {"num_hidden_layers", 1},
          {"num_attention_heads", 2},
          {"num_key_value_heads", 1},
          {"vocab_size", 8},
          {"max_position_embeddings", 128},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"tie_word_embeddings", false}};
}

inline std::vector<StTensor> tiny_tensors() {
  return {
      {"model.embed_tokens.weight", "F32", {8, 32}, {}},
      {"lm_head.weight", "F32", {8, 32}, {}},
      {"model.norm.weight", "F32", {32}, {}},
      {"model.layers.0.input_layernorm.weight", "F32", {32}, {}},
      {"model.layers.0.post_attention_layernorm.weight", "F32", {32}, {}},
      {"model.layers.0.self_attn.q_proj.weight", "F32", {32, 32}, {}},
      {"model.layers.0.self_attn.k_proj.weight", "F32", {16, 32}, {}},
      {"model.layers.0.self_attn.v_proj.weight", "F32", {16, 32}, {}},
      {"model.layers.0.self_attn.o_proj.weight", "F32", {32, 32}, {}},
      {"model.layers.0.mlp.gate_proj.weight", "F32", {64, 32}, {}},
      {"model.layers.0.mlp.up_proj.weight", "F32", {64, 32}, {}},
      {"model.layers.0.mlp.down_proj.weight", "F32", {32, 64}, {}},
  };
}

inline std::string write_checkpoint(const std::string& name, const nlohmann::json& config,
                                    const std::vector<StTensor>& tensors) {
  const std::string dir = scratch_dir(name);
  write_file(dir + "/config.json", config.dump());
  write_file(dir + "/model.safetensors", make_safetensors(tensors));
  return dir;
}

}  // namespace nucleus::hftest
