#pragma once
// Test-only helpers for the format tests: a GGUF writer that can also write
// deliberately broken files, a tiny valid llama model spec, and temp files.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace nucleus::testing {

class Bytes {
 public:
  std::vector<uint8_t> b;
  template <class T>
  void put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void raw(const std::vector<uint8_t>& r) { b.insert(b.end(), r.begin(), r.end()); }
};

// Writes GGUF files field by field; every field can be overridden so tests
// can produce exactly one defect at a time.
struct GgufBuilder {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  uint64_t alignment = 32;
  Bytes kv;
  uint64_t n_kv = 0;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type = 0;
    std::vector<uint8_t> data;
    int64_t offset_override = -1;
  };
  std::vector<Tensor> tensors;

  void key(const std::string& k, uint32_t type) {
    kv.str(k);
    kv.put<uint32_t>(type);
    ++n_kv;
  }
  void add_u32(const std::string& k, uint32_t v) {
    key(k, 4);
    kv.put(v);
  }
  void add_i32(const std::string& k, int32_t v) {
    key(k, 5);
    kv.put(v);
  }
  void add_f32(const std::string& k, float v) {
    key(k, 6);
    kv.put(v);
  }
  void add_bool(const std::string& k, bool v) {
    key(k, 7);
    kv.put<uint8_t>(v ? 1 : 0);
  }
  void add_string(const std::string& k, const std::string& v) {
    key(k, 8);
    kv.str(v);
  }
  void add_string_array(const std::string& k, const std::vector<std::string>& v) {
    key(k, 9);
    kv.put<uint32_t>(8);
    kv.put<uint64_t>(v.size());
    for (const auto& s : v) kv.str(s);
  }
  void add_f32_array(const std::string& k, const std::vector<float>& v) {
    key(k, 9);
    kv.put<uint32_t>(6);
    kv.put<uint64_t>(v.size());
    for (float x : v) kv.put(x);
  }
  void add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
    key(k, 9);
    kv.put<uint32_t>(5);
    kv.put<uint64_t>(v.size());
    for (int32_t x : v) kv.put(x);
  }
  // A tensor of F32 values i * 0.25 (distinct, so views can be checked).
  void add_f32_tensor(const std::string& name, std::vector<uint64_t> ne) {
    Tensor t;
    t.name = name;
    t.ne = std::move(ne);
    uint64_t n = 1;
    for (uint64_t d : t.ne) n *= d;
    Bytes data;
    for (uint64_t i = 0; i < n; ++i) data.put(static_cast<float>(i) * 0.25f);
    t.data = data.b;
    tensors.push_back(std::move(t));
  }

  std::vector<uint8_t> build() const {
    Bytes out;
    out.put(magic);
    out.put(version);
    out.put<uint64_t>(tensors.size());
    out.put<uint64_t>(n_kv);
    out.raw(kv.b);
    std::vector<uint64_t> offsets;
    uint64_t off = 0;
    for (const Tensor& t : tensors) {
      offsets.push_back(t.offset_override >= 0 ? static_cast<uint64_t>(t.offset_override) : off);
      off += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      out.str(t.name);
      out.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) out.put(d);
      out.put(t.type);
      out.put(offsets[i]);
    }
    while (out.b.size() % alignment) out.b.push_back(0);
    for (const Tensor& t : tensors) {
      out.raw(t.data);
      while (out.b.size() % alignment) out.b.push_back(0);
    }
    return out.b;
  }
};

// Metadata + tensors of a tiny valid llama model: dim 8, 1 layer, 2 heads of
// size 4, 1 KV head, FFN 16, vocab 4, untied output.
inline GgufBuilder tiny_llama(bool with_tensors = true) {
  GgufBuilder g;
  g.add_string("general.architecture", "llama");
  g.add_u32("llama.context_length", 32);
  g.add_u32("llama.embedding_length", 8);
  g.add_u32("llama.block_count", 1);
  g.add_u32("llama.feed_forward_length", 16);
  g.add_u32("llama.attention.head_count", 2);
  g.add_u32("llama.attention.head_count_kv", 1);
  g.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.add_string("tokenizer.ggml.model", "llama");
  g.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>",
                                               "\xe2\x96\x81"
                                               "a"});
  g.add_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1});
  g.add_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1});
  g.add_bool("tokenizer.ggml.add_bos_token", true);
  if (!with_tensors) return g;
  g.add_f32_tensor("token_embd.weight", {8, 4});
  g.add_f32_tensor("output_norm.weight", {8});
  g.add_f32_tensor("output.weight", {8, 4});
  g.add_f32_tensor("blk.0.attn_norm.weight", {8});
  g.add_f32_tensor("blk.0.attn_q.weight", {8, 8});
  g.add_f32_tensor("blk.0.attn_k.weight", {8, 4});
  g.add_f32_tensor("blk.0.attn_v.weight", {8, 4});
  g.add_f32_tensor("blk.0.attn_output.weight", {8, 8});
  g.add_f32_tensor("blk.0.ffn_norm.weight", {8});
  g.add_f32_tensor("blk.0.ffn_gate.weight", {8, 16});
  g.add_f32_tensor("blk.0.ffn_up.weight", {8, 16});
  g.add_f32_tensor("blk.0.ffn_down.weight", {16, 8});
  return g;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nucleus_fmt_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace nucleus::testing
