#include "formats/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace nucleus {

namespace {
// GGUF metadata value type ids (gguf_type); formats/gguf.h names them for readers.
enum KvType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
}  // namespace

GgufWriter::~GgufWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(part_path_.c_str());
  }
}

void GgufWriter::put_raw(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}

void GgufWriter::put_string(std::string& out, const std::string& s) {
  const uint64_t n = s.size();
  put_raw(out, &n, 8);
  out += s;
}

bool GgufWriter::has_key(const std::string& key) const {
  return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

void GgufWriter::begin_kv(const std::string& key, uint32_t type) {
  check(file_ == nullptr, "GGUF writer: metadata '" + key + "' added after begin()");
  check(!key.empty(), "GGUF writer: empty metadata key");
  check(!has_key(key), "GGUF writer: metadata key '" + key + "' added twice");
  keys_.push_back(key);
  ++kv_count_;
  put_string(kv_bytes_, key);
  const uint32_t t = type;
  put_raw(kv_bytes_, &t, 4);
}

void GgufWriter::add_kv(const std::string& key, uint32_t type, const void* raw, size_t n) {
  begin_kv(key, type);
  put_raw(kv_bytes_, raw, n);
}

void GgufWriter::add_encoded(const std::string& key, uint32_t type, const std::string& payload) {
  check(type <= kF64,
        "GGUF writer: metadata '" + key + "' has unknown type id " + std::to_string(type));
  add_kv(key, type, payload.data(), payload.size());
}

void GgufWriter::add_u8(const std::string& k, uint8_t v) {
  add_kv(k, kU8, &v, 1);
}
void GgufWriter::add_i8(const std::string& k, int8_t v) {
  add_kv(k, kI8, &v, 1);
}
void GgufWriter::add_u16(const std::string& k, uint16_t v) {
  add_kv(k, kU16, &v, 2);
}
void GgufWriter::add_i16(const std::string& k, int16_t v) {
  add_kv(k, kI16, &v, 2);
}
void GgufWriter::add_u32(const std::string& k, uint32_t v) {
  add_kv(k, kU32, &v, 4);
}
void GgufWriter::add_i32(const std::string& k, int32_t v) {
  add_kv(k, kI32, &v, 4);
}
void GgufWriter::add_f32(const std::string& k, float v) {
  add_kv(k, kF32, &v, 4);
}
void GgufWriter::add_u64(const std::string& k, uint64_t v) {
  add_kv(k, kU64, &v, 8);
}
void GgufWriter::add_i64(const std::string& k, int64_t v) {
  add_kv(k, kI64, &v, 8);
}
void GgufWriter::add_f64(const std::string& k, double v) {
  add_kv(k, kF64, &v, 8);
}
void GgufWriter::add_bool(const std::string& k, bool v) {
  const uint8_t b = v ? 1 : 0;
  add_kv(k, kBool, &b, 1);
}
void GgufWriter::add_string(const std::string& k, const std::string& v) {
  begin_kv(k, kString);
  put_string(kv_bytes_, v);
}

namespace {
template <typename T>
void put_array(std::string& out, uint32_t elem_type, const std::vector<T>& v) {
  out.append(reinterpret_cast<const char*>(&elem_type), 4);
  const uint64_t n = v.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}
}  // namespace

void GgufWriter::add_string_array(const std::string& k, const std::vector<std::string>& v) {
  begin_kv(k, kArray);
  const uint32_t et = kString;
  put_raw(kv_bytes_, &et, 4);
  const uint64_t n = v.size();
  put_raw(kv_bytes_, &n, 8);
  for (const std::string& s : v) put_string(kv_bytes_, s);
}
void GgufWriter::add_f32_array(const std::string& k, const std::vector<float>& v) {
  begin_kv(k, kArray);
  put_array(kv_bytes_, kF32, v);
}
void GgufWriter::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  begin_kv(k, kArray);
  put_array(kv_bytes_, kI32, v);
}
void GgufWriter::add_u32_array(const std::string& k, const std::vector<uint32_t>& v) {
  begin_kv(k, kArray);
  put_array(kv_bytes_, kU32, v);
}

void GgufWriter::add_tensor(const std::string& name, DType type,
                            const std::vector<int64_t>& shape) {
  check(file_ == nullptr, "GGUF writer: tensor '" + name + "' added after begin()");
  check(!name.empty() && name.size() < 64,
        "GGUF writer: tensor name '" + name + "' must have 1 to 63 bytes");
  check(!shape.empty() && shape.size() <= 4,
        "GGUF writer: tensor '" + name + "' must have 1 to 4 dimensions");
  for (const Info& t : tensors_)
    check(t.name != name, "GGUF writer: tensor '" + name + "' added twice");
  const DTypeInfo& info = dtype_info(type);
  uint64_t numel = 1;
  for (int64_t d : shape) {
    check(d > 0 && d < (int64_t{1} << 40),
          "GGUF writer: tensor '" + name + "' has dimension " + std::to_string(d));
    check(numel <= (uint64_t{1} << 50) / static_cast<uint64_t>(d),
          "GGUF writer: tensor '" + name + "' is too large");
    numel *= static_cast<uint64_t>(d);
  }
  check(shape[0] % info.block_elems == 0, "GGUF writer: tensor '" + name + "' row of " +
                                              std::to_string(shape[0]) +
                                              " elements is not a multiple of " + info.name +
                                              "'s block of " + std::to_string(info.block_elems));
  Info t{name, type, shape, data_size_,
         numel / static_cast<uint64_t>(info.block_elems) * static_cast<uint64_t>(info.block_bytes)};
  data_size_ += (t.nbytes + kGgufWriteAlignment - 1) / kGgufWriteAlignment * kGgufWriteAlignment;
  tensors_.push_back(std::move(t));
}

void GgufWriter::emit(const void* p, size_t n) {
  if (n == 0) return;
  if (std::fwrite(p, 1, n, file_) != n)
    throw Error(part_path_ + ": write failed: " + std::strerror(errno));
  written_ += n;
}

void GgufWriter::pad_to_alignment() {
  static constexpr char kZeros[kGgufWriteAlignment] = {};
  const uint64_t rem = written_ % kGgufWriteAlignment;
  if (rem != 0) emit(kZeros, kGgufWriteAlignment - rem);
}

void GgufWriter::begin(const std::string& path) {
  check(file_ == nullptr, "GGUF writer: begin() called twice");
  path_ = path;
  part_path_ = path + ".part";
  file_ = std::fopen(part_path_.c_str(), "wb");
  check(file_ != nullptr, part_path_ + ": cannot create: " + std::strerror(errno));
  file_buffer_.resize(size_t{1} << 22);
  std::setvbuf(file_, file_buffer_.data(), _IOFBF, file_buffer_.size());

  std::string head;
  head += "GGUF";
  put_raw(head, &kGgufWriteVersion, 4);
  const uint64_t n_tensors = tensors_.size();
  put_raw(head, &n_tensors, 8);
  put_raw(head, &kv_count_, 8);
  head += kv_bytes_;
  for (const Info& t : tensors_) {
    put_string(head, t.name);
    const uint32_t nd = static_cast<uint32_t>(t.shape.size());
    put_raw(head, &nd, 4);
    for (int64_t d : t.shape) {
      const uint64_t u = static_cast<uint64_t>(d);
      put_raw(head, &u, 8);
    }
    const uint32_t ty = static_cast<uint32_t>(t.type);
    put_raw(head, &ty, 4);
    put_raw(head, &t.offset, 8);
  }
  emit(head.data(), head.size());
  pad_to_alignment();
  data_start_ = written_;
  current_ = 0;
  current_done_ = 0;
}

void GgufWriter::write(const void* data, size_t n) {
  check(file_ != nullptr, "GGUF writer: write() before begin()");
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    check(current_ < tensors_.size(), part_path_ + ": more tensor data than declared");
    const Info& t = tensors_[current_];
    const uint64_t take = std::min<uint64_t>(n, t.nbytes - current_done_);
    emit(p, take);
    p += take;
    n -= take;
    current_done_ += take;
    if (current_done_ == t.nbytes) {
      pad_to_alignment();
      ++current_;
      current_done_ = 0;
    }
  }
}

void GgufWriter::finish() {
  check(file_ != nullptr, "GGUF writer: finish() before begin()");
  check(current_ == tensors_.size(),
        part_path_ + ": tensor '" + (current_ < tensors_.size() ? tensors_[current_].name : "") +
            "' not fully written");
  check(written_ == data_start_ + data_size_, part_path_ + ": data size mismatch");
  const bool flushed = std::fflush(file_) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    std::remove(part_path_.c_str());
    throw Error(part_path_ + ": write failed: " + std::strerror(errno));
  }
  if (std::rename(part_path_.c_str(), path_.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(part_path_.c_str());
    throw Error(path_ + ": cannot rename from " + part_path_ + ": " + err);
  }
}

}  // namespace nucleus
