#pragma once
// GGUF (versions 2 and 3) reader. The whole file is memory-mapped; metadata is
// parsed into GgufValue trees and tensor data stays in the mapping (views, no
// copies). Every length, count, offset and size is checked against the file
// before use, so a hostile file yields a one-line nucleus::Error, never an
// out-of-bounds read.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/model_file.h"
#include "formats/tensor.h"
#include "model/config.h"
#include "tokenizer/vocab.h"
#include "util/mapped_file.h"

namespace nucleus {

// GGUF metadata value type ids.
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

const char* gguf_type_name(GgufType t);

struct GgufValue {
  GgufType type = GgufType::U8;
  // Integer and bool payloads: signed types in i, unsigned in u (both set when
  // the value fits the other).
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;  // F32, F64
  std::string s;   // String
  // Array: elements of string or array type are in items; integer and bool
  // elements in ints (u64 above INT64_MAX keep their bit pattern; get_int_array
  // rejects them); f32/f64 elements in floats. Compact, so a long numeric array
  // costs 8 bytes per element, not a GgufValue.
  GgufType elem_type = GgufType::U8;
  std::vector<GgufValue> items;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  size_t size() const { return items.size() + ints.size() + floats.size(); }  // array length
  bool is_integer() const;  // any integer type (not bool)
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
  // Printable form for `nucleus info`; long arrays are abbreviated.
  std::string to_string(size_t max_items = 8) const;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<int64_t> shape;  // ggml order
  uint64_t offset = 0;         // relative to the data section
  size_t nbytes = 0;
};

class GgufFile {
 public:
  // Maps and parses the file; throws Error("<path>: <problem>") on any defect.
  explicit GgufFile(const std::string& path);
  // Parses bytes already in memory (tests, fuzzing); `name` stands in for the
  // path in messages. No copy: the caller keeps `bytes` alive as long as this
  // object and any view taken from it. mapping() is null.
  GgufFile(const std::string& name, std::span<const uint8_t> bytes);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::shared_ptr<MappedFile>& mapping() const { return file_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed lookups. get_* throw Error (naming file and key) when the key is
  // absent or has an incompatible type; find_* return nullopt when absent and
  // throw on an incompatible type. Integers accept any integer type whose
  // value fits int64; floats accept F32/F64 and integer types.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const GgufValue& get_array(const std::string& key) const;
  std::optional<std::string> find_string(const std::string& key) const;
  std::optional<int64_t> find_int(const std::string& key) const;
  std::optional<double> find_float(const std::string& key) const;
  std::optional<bool> find_bool(const std::string& key) const;
  // Whole arrays with element type checks (absent key -> empty vector).
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<float> get_float_array(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensor_infos() const { return tensors_; }
  // A view into the mapping; throws Error for an unsupported type (only the
  // DTypes of formats/tensor.h can be viewed; parsing already rejects others).
  TensorView view(const GgufTensorInfo& info) const;

 private:
  std::string path_;
  void parse();

  std::shared_ptr<MappedFile> file_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
};

// The general.architecture values this engine runs: the LLaMA family as
// llama.cpp names it ("llama", "mistral", "qwen2", "qwen3").
bool gguf_arch_supported(const std::string& arch);
// How an architecture's GGUF files pair Q/K rows for RoPE, after llama.cpp's
// llama_model_rope_type(): LLAMA_ROPE_TYPE_NORM (interleaved pairs; its
// converter permutes HF rows) for llama/mistral, LLAMA_ROPE_TYPE_NEOX
// (rotate-half; HF rows kept as they are) for qwen2/qwen3.
RopeLayout gguf_rope_layout(const std::string& arch);

// Model configuration from `<arch>.*` metadata plus tensor shapes.
ModelConfig gguf_config(const GgufFile& gguf);
// Vocabulary from tokenizer.ggml.*; empty Vocab when the file has no tokens.
Vocab gguf_vocab(const GgufFile& gguf);

// A ModelFile from a parsed GGUF (config validated, shapes checked); keeps
// the mapping alive when the GgufFile has one.
ModelFile gguf_model(const GgufFile& gguf);
// Full model: config (validated, tensor shapes checked), tensors, vocab, metadata.
ModelFile read_gguf(const std::string& path);
// Vocabulary, architecture name and printable metadata only; config and
// tensors stay empty (LoadOptions::vocab_only).
ModelFile read_gguf_vocab_only(const std::string& path);
// Just the vocabulary (works for vocab-only files without tensors or config).
Vocab read_gguf_vocab(const std::string& path);

}  // namespace nucleus
