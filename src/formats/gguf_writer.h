#pragma once
// Writes GGUF v3 files: header, typed metadata, tensor infos, then the tensor
// data, each tensor starting at a multiple of 32 bytes. Tensor bytes are
// streamed in the order the tensors were declared, so a model never has to be
// held in memory whole.
//
//   GgufWriter w;
//   w.add_string("general.architecture", "llama");
//   w.add_tensor("token_embd.weight", DType::F32, {dim, vocab});
//   w.begin(path);           // writes everything before the data
//   w.write(bytes, n); ...   // exactly the bytes of each tensor, in order
//   w.finish();              // checks the counts, renames into place
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "formats/tensor.h"

namespace nucleus {

constexpr uint32_t kGgufWriteVersion = 3;
constexpr uint64_t kGgufWriteAlignment = 32;

class GgufWriter {
 public:
  GgufWriter() = default;
  ~GgufWriter();  // removes the partial file when finish() was not reached
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata; each key at most once (Error otherwise).
  void add_u8(const std::string& key, uint8_t v);
  void add_i8(const std::string& key, int8_t v);
  void add_u16(const std::string& key, uint16_t v);
  void add_i16(const std::string& key, int16_t v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_u64(const std::string& key, uint64_t v);
  void add_i64(const std::string& key, int64_t v);
  void add_f64(const std::string& key, double v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void add_u32_array(const std::string& key, const std::vector<uint32_t>& v);
  // A value of GGUF type id `type` already encoded in GGUF's byte layout
  // (used to copy metadata from another file unchanged).
  void add_encoded(const std::string& key, uint32_t type, const std::string& payload);
  bool has_key(const std::string& key) const;

  // shape in ggml order (shape[0] contiguous); shape[0] must be a multiple of
  // the type's block size.
  void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape);
  size_t tensor_count() const { return tensors_.size(); }
  // Bytes of tensor i's data (without padding).
  uint64_t tensor_bytes(size_t i) const { return tensors_.at(i).nbytes; }

  // Opens path (written as path + ".part", renamed by finish()) and writes
  // everything up to the first tensor's data.
  void begin(const std::string& path);
  // Appends data of the current tensor; moves on (padding) when it is full.
  void write(const void* data, size_t n);
  // Checks that every tensor got all its bytes, flushes and renames.
  void finish();

 private:
  struct Info {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    uint64_t offset;
    uint64_t nbytes;
  };
  void add_kv(const std::string& key, uint32_t type, const void* raw, size_t n);
  void begin_kv(const std::string& key, uint32_t type);
  void put_raw(std::string& out, const void* p, size_t n);
  void put_string(std::string& out, const std::string& s);
  void emit(const void* p, size_t n);
  void pad_to_alignment();

  std::string kv_bytes_;
  uint64_t kv_count_ = 0;
  std::vector<std::string> keys_;
  std::vector<Info> tensors_;
  uint64_t data_size_ = 0;

  std::string path_;
  std::string part_path_;
  std::FILE* file_ = nullptr;
  std::vector<char> file_buffer_;
  uint64_t written_ = 0;       // bytes emitted so far
  uint64_t data_start_ = 0;    // file offset of the data section
  size_t current_ = 0;         // tensor being written
  uint64_t current_done_ = 0;  // its bytes written so far
};

}  // namespace nucleus
