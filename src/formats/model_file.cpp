#include "formats/model_file.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "formats/gguf.h"
#include "formats/hf_checkpoint.h"
#include "formats/llama2c.h"
#include "util/error.h"

namespace nucleus {

const TensorView* ModelFile::find(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

void ModelFile::release_pages(const uint8_t* p, size_t n) const {
  for (const auto& m : mappings) m->release(p, n);
}

bool ModelFile::mapped(const uint8_t* p, size_t n) const {
  for (const auto& m : mappings)
    if (m->contains(p, n)) return true;
  return false;
}

const TensorView& ModelFile::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (t == nullptr) throw Error("model has no tensor '" + name + "'");
  return *t;
}

namespace {

bool has_gguf_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[4] = {};
  const size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

// Trailing 1s do not change a tensor's layout, so [64, 1] equals [64].
std::vector<int64_t> squeeze(std::vector<int64_t> s) {
  while (s.size() > 1 && s.back() == 1) s.pop_back();
  return s;
}

std::string shape_text(const std::vector<int64_t>& s) {
  TensorView t;
  t.shape = s;
  return t.shape_str();
}

}  // namespace

void check_tensor_shapes(const ModelFile& model, const std::string& source) {
  const ModelConfig& c = model.config;
  auto expect = [&](const std::string& name, std::vector<int64_t> want, bool required) {
    const TensorView* t = model.find(name);
    if (t == nullptr) {
      if (required) throw Error(source + ": missing tensor " + name);
      return;
    }
    if (squeeze(t->shape) != squeeze(want)) {
      std::string msg = source + ": inconsistent shapes: tensor " + name + " is " + t->shape_str();
      msg += ", expected " + shape_text(want) + " from the model config";
      throw Error(msg);
    }
  };
  const int64_t dim = c.dim, q = c.q_dim(), kv = c.kv_dim(), ffn = c.ffn_dim, vocab = c.vocab_size;
  expect("token_embd.weight", {dim, vocab}, true);
  expect("output_norm.weight", {dim}, true);
  expect("output.weight", {dim, vocab}, !c.tied_embeddings);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    expect(p + "attn_norm.weight", {dim}, true);
    expect(p + "attn_q.weight", {dim, q}, true);
    expect(p + "attn_k.weight", {dim, kv}, true);
    expect(p + "attn_v.weight", {dim, kv}, true);
    expect(p + "attn_output.weight", {q, dim}, true);
    expect(p + "ffn_norm.weight", {dim}, true);
    expect(p + "ffn_gate.weight", {dim, ffn}, true);
    expect(p + "ffn_up.weight", {dim, ffn}, true);
    expect(p + "ffn_down.weight", {ffn, dim}, true);
    expect(p + "attn_q.bias", {q}, c.attn_bias);
    expect(p + "attn_k.bias", {kv}, c.attn_bias);
    expect(p + "attn_v.bias", {kv}, c.attn_bias);
    expect(p + "attn_q_norm.weight", {c.head_dim}, c.qk_norm);
    expect(p + "attn_k_norm.weight", {c.head_dim}, c.qk_norm);
    expect(p + "attn_output.bias", {dim}, false);
    expect(p + "ffn_gate.bias", {ffn}, false);
    expect(p + "ffn_up.bias", {ffn}, false);
    expect(p + "ffn_down.bias", {dim}, false);
  }
}

ModelFile load_model_file(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return load_hf_checkpoint(path);
  }
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": no such file");
  // A .gguf name without the magic still goes to the GGUF reader, whose
  // "bad magic" says more than a llama2.c header complaint would.
  if (has_gguf_magic(path) || std::filesystem::path(path).extension() == ".gguf") {
    return options.vocab_only ? read_gguf_vocab_only(path) : read_gguf(path);
  }
  // llama2.c: the tokenizer is optional so that id-level commands work without it.
  if (!options.tokenizer_path.empty())
    return read_llama2c(path, options.tokenizer_path, options.vocab_only);
  const std::filesystem::path beside = std::filesystem::path(path).parent_path() / "tokenizer.bin";
  if (!std::filesystem::is_regular_file(beside, ec))
    return read_llama2c(path, "", options.vocab_only);
  try {
    return read_llama2c(path, beside.string(), options.vocab_only);
  } catch (const Error& e) {
    // The user did not name this tokenizer, so say where it came from.
    std::string msg = e.what();
    msg += " (found beside the model; pass a tokenizer explicitly to use another)";
    throw Error(msg);
  }
}

}  // namespace nucleus
