#include "formats/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian u32
// Nested arrays are legal but never deep in practice; a bound keeps a crafted
// file from exhausting the stack through recursion.
constexpr int kMaxArrayDepth = 8;
constexpr uint32_t kMaxDims = 4;
// Decoded metadata may not exceed this much memory: a hostile file could
// otherwise turn a long array of 1-byte elements into many times its size.
// Real vocabularies (256k tokens with scores, types and merges) need well
// under a tenth of it.
constexpr uint64_t kMetadataBudget = uint64_t{1} << 30;

std::string num(uint64_t v) {
  return std::to_string(v);
}

// Bytes a value of type t occupies at least (fixed size for scalars, the
// length prefix for strings, type + count for arrays); 0 for an invalid id.
uint64_t min_value_size(uint32_t t) {
  switch (static_cast<GgufType>(t)) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
    case GgufType::String:
      return 8;
    case GgufType::Array:
      return 12;
  }
  return 0;
}

// Bounds-checked little-endian reader over the mapped bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining()) {
      std::string msg = "truncated file: ";
      msg += what;
      msg +=
          " needs " + num(n) + " bytes at offset " + num(pos_) + " but the file has " + num(size_);
      fail(msg);
    }
  }

  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " length");
    if (n > remaining()) {
      std::string msg = what;
      msg += ": string length " + num(n) + " at offset " + num(pos_ - 8) +
             " exceeds the remaining " + num(remaining()) + " bytes of the file";
      fail(msg);
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

bool integer_type(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}

void spend(Cursor& in, uint64_t& budget, uint64_t bytes, const std::string& what) {
  if (bytes > budget) {
    in.fail(what + ": metadata would take more than " + num(kMetadataBudget >> 20) +
            " MiB of memory once decoded");
  }
  budget -= bytes;
}

void read_value(Cursor& in, GgufType type, GgufValue& v, const std::string& what, int depth,
                uint64_t& budget) {
  v.type = type;
  switch (type) {
    case GgufType::U8:
      v.u = in.read<uint8_t>(what);
      v.i = static_cast<int64_t>(v.u);
      break;
    case GgufType::I8:
      v.i = in.read<int8_t>(what);
      break;
    case GgufType::U16:
      v.u = in.read<uint16_t>(what);
      v.i = static_cast<int64_t>(v.u);
      break;
    case GgufType::I16:
      v.i = in.read<int16_t>(what);
      break;
    case GgufType::U32:
      v.u = in.read<uint32_t>(what);
      v.i = static_cast<int64_t>(v.u);
      break;
    case GgufType::I32:
      v.i = in.read<int32_t>(what);
      break;
    case GgufType::U64:
      v.u = in.read<uint64_t>(what);
      v.i = static_cast<int64_t>(v.u);  // only meaningful when u fits; get_int checks
      break;
    case GgufType::I64:
      v.i = in.read<int64_t>(what);
      break;
    case GgufType::F32:
      v.f = in.read<float>(what);
      break;
    case GgufType::F64:
      v.f = in.read<double>(what);
      break;
    case GgufType::Bool: {
      const uint8_t b = in.read<uint8_t>(what);
      if (b > 1) in.fail(what + ": bool value " + num(b) + " is neither 0 nor 1");
      v.u = b;
      v.i = b;
      break;
    }
    case GgufType::String:
      v.s = in.read_string(what);
      spend(in, budget, v.s.size(), what);
      break;
    case GgufType::Array: {
      if (depth >= kMaxArrayDepth) {
        in.fail(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
      }
      const uint32_t et = in.read<uint32_t>(what + " element type");
      const uint64_t elem_min = min_value_size(et);
      if (elem_min == 0) in.fail(what + ": unknown array element type " + num(et));
      const uint64_t count = in.read<uint64_t>(what + " element count");
      if (count > in.remaining() / elem_min) {
        std::string msg = what;
        msg += ": array of " + num(count) + " " + gguf_type_name(static_cast<GgufType>(et)) +
               " elements cannot fit in the remaining " + num(in.remaining()) + " bytes";
        in.fail(msg);
      }
      v.elem_type = static_cast<GgufType>(et);
      const size_t n = static_cast<size_t>(count);
      GgufValue scratch;
      if (v.elem_type == GgufType::String || v.elem_type == GgufType::Array) {
        spend(in, budget, count * sizeof(GgufValue), what);
        v.items.resize(n);
        for (GgufValue& item : v.items) read_value(in, v.elem_type, item, what, depth + 1, budget);
      } else if (v.elem_type == GgufType::F32 || v.elem_type == GgufType::F64) {
        spend(in, budget, count * sizeof(double), what);
        v.floats.resize(n);
        for (double& x : v.floats) {
          read_value(in, v.elem_type, scratch, what, depth + 1, budget);
          x = scratch.f;
        }
      } else {
        spend(in, budget, count * sizeof(int64_t), what);
        v.ints.resize(n);
        for (int64_t& x : v.ints) {
          read_value(in, v.elem_type, scratch, what, depth + 1, budget);
          x = scratch.i;
        }
      }
      break;
    }
    default:
      in.fail(what + ": unknown value type " + num(static_cast<uint32_t>(type)));
  }
  if (v.i >= 0 && (type == GgufType::I8 || type == GgufType::I16 || type == GgufType::I32 ||
                   type == GgufType::I64)) {
    v.u = static_cast<uint64_t>(v.i);
  }
}

std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8:
      return "u8";
    case GgufType::I8:
      return "i8";
    case GgufType::U16:
      return "u16";
    case GgufType::I16:
      return "i16";
    case GgufType::U32:
      return "u32";
    case GgufType::I32:
      return "i32";
    case GgufType::F32:
      return "f32";
    case GgufType::Bool:
      return "bool";
    case GgufType::String:
      return "string";
    case GgufType::Array:
      return "array";
    case GgufType::U64:
      return "u64";
    case GgufType::I64:
      return "i64";
    case GgufType::F64:
      return "f64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  return integer_type(type);
}

std::string GgufValue::to_string(size_t max_items) const {
  switch (type) {
    case GgufType::U8:
    case GgufType::U16:
    case GgufType::U32:
    case GgufType::U64:
      return std::to_string(u);
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64:
      return std::to_string(i);
    case GgufType::F32:
    case GgufType::F64: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", f);
      return buf;
    }
    case GgufType::Bool:
      return u ? "true" : "false";
    case GgufType::String:
      return escape(s);
    case GgufType::Array: {
      std::string out = "[";
      const size_t n = size();
      for (size_t k = 0; k < n && k < max_items; ++k) {
        if (k) out += ", ";
        if (!items.empty()) {
          if (items[k].type == GgufType::String) out += '"';
          out += items[k].to_string(max_items);
          if (items[k].type == GgufType::String) out += '"';
        } else {
          GgufValue e;
          e.type = elem_type;
          e.i = ints.empty() ? 0 : ints[k];
          e.u = static_cast<uint64_t>(e.i);
          e.f = floats.empty() ? 0.0 : floats[k];
          out += e.to_string(max_items);
        }
      }
      if (n > max_items) out += ", ...";
      out += "]";
      if (n > max_items) {
        out += " (" + std::to_string(n) + " ";
        out += gguf_type_name(elem_type);
        out += ")";
      }
      return out;
    }
  }
  return "?";
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  file_ = std::make_shared<MappedFile>(path);
  base_ = file_->data();
  size_ = file_->size();
  parse();
}

GgufFile::GgufFile(const std::string& name, std::span<const uint8_t> bytes)
    : path_(name), base_(bytes.data()), size_(bytes.size()) {
  parse();
}

void GgufFile::parse() {
  const size_t size = size_;
  Cursor in(base_, size, path_);

  if (size < 4) in.fail("not a GGUF file (shorter than the 4-byte magic)");
  const uint32_t magic = in.read<uint32_t>("magic");
  if (magic != kGgufMagic) in.fail("not a GGUF file (bad magic)");
  version_ = in.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    std::string msg = "unsupported GGUF version " + num(version_) + " (supported: 2, 3)";
    if (version_ == 0x03000000u || version_ == 0x02000000u)
      msg += "; big-endian files are not supported";
    in.fail(msg);
  }
  const uint64_t n_tensors = in.read<uint64_t>("tensor count");
  const uint64_t n_kv = in.read<uint64_t>("metadata count");
  // Smallest encodings: key (8-byte length) + type + 1-byte value; name (8) +
  // n_dims (4) + one dim (8) + type (4) + offset (8).
  if (n_kv > in.remaining() / 13) {
    in.fail("metadata count " + num(n_kv) + " cannot fit in the file (" + num(size) + " bytes)");
  }
  if (n_tensors > in.remaining() / 32) {
    in.fail("tensor count " + num(n_tensors) + " cannot fit in the file (" + num(size) + " bytes)");
  }

  uint64_t budget = kMetadataBudget;
  // Counts are only known to fit the file: reserve what the metadata budget
  // allows, not what a hostile count asks for (each entry is spent below).
  kv_.reserve(static_cast<size_t>(std::min<uint64_t>(n_kv, kMetadataBudget / 4096)));
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string where = "metadata entry " + num(k);
    std::string key = in.read_string(where + " key");
    const std::string what = "metadata '" + escape(key) + "'";
    const uint32_t type = in.read<uint32_t>(what + " type");
    if (min_value_size(type) == 0) in.fail(what + ": unknown value type " + num(type));
    GgufValue v;
    spend(in, budget, sizeof(GgufValue) + key.size(), what);
    read_value(in, static_cast<GgufType>(type), v, what, 0, budget);
    if (!kv_index_.emplace(key, kv_.size()).second)
      in.fail("duplicate metadata key '" + escape(key) + "'");
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->u == 0) {
      in.fail("general.alignment must be a positive integer, got " + a->to_string());
    }
    const uint64_t al = a->u;
    if ((al & (al - 1)) != 0 || al > (1u << 24)) {
      in.fail("general.alignment " + num(al) + " is not a power of two up to 16 MiB");
    }
    alignment_ = al;
  }

  tensors_.reserve(static_cast<size_t>(std::min<uint64_t>(n_tensors, 1 << 16)));
  std::unordered_map<std::string, size_t> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    t.name = in.read_string("tensor " + num(k) + " name");
    const std::string what = "tensor '" + escape(t.name) + "'";
    if (!names.emplace(t.name, k).second) in.fail("duplicate tensor name '" + escape(t.name) + "'");
    const uint32_t n_dims = in.read<uint32_t>(what + " dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      in.fail(what + ": dimension count " + num(n_dims) + " is not in 1.." + num(kMaxDims));
    }
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = in.read<uint64_t>(what + " shape");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          static_cast<int64_t>(ne) > std::numeric_limits<int64_t>::max() / numel) {
        in.fail(what + ": invalid or overflowing shape (dimension " + num(d) + " = " + num(ne) +
                ")");
      }
      numel *= static_cast<int64_t>(ne);
      t.shape.push_back(static_cast<int64_t>(ne));
    }
    t.ggml_type = in.read<uint32_t>(what + " type");
    const DTypeInfo* info = dtype_info(t.ggml_type);
    if (info == nullptr) {
      in.fail(what + ": unsupported tensor type id " + num(t.ggml_type) +
              " (supported: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, "
              "q6_k, iq4_nl, iq4_xs)");
    }
    if (t.shape[0] % info->block_elems != 0) {
      std::string msg = what + ": row length " + std::to_string(t.shape[0]) +
                        " is not a multiple of the " + info->name + " block size " +
                        std::to_string(info->block_elems);
      in.fail(msg);
    }
    const uint64_t row = static_cast<uint64_t>(t.shape[0] / info->block_elems) *
                         static_cast<uint64_t>(info->block_bytes);
    const uint64_t rows = static_cast<uint64_t>(numel / t.shape[0]);
    if (rows != 0 && row > std::numeric_limits<uint64_t>::max() / rows)
      in.fail(what + ": byte size overflows");
    t.nbytes = static_cast<size_t>(row * rows);
    t.offset = in.read<uint64_t>(what + " offset");
    if (t.offset % alignment_ != 0) {
      in.fail(what + ": data offset " + num(t.offset) + " is not a multiple of the alignment " +
              num(alignment_));
    }
    tensors_.push_back(std::move(t));
  }

  // pos <= size, so rounding up cannot overflow.
  data_offset_ = (in.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > size) {
    in.fail("truncated file: tensor data section would start at offset " + num(data_offset_) +
            " but the file has " + num(size) + " bytes");
  }
  for (const GgufTensorInfo& t : tensors_) {
    const uint64_t avail = size - data_offset_;
    if (t.offset > avail || t.nbytes > avail - t.offset) {
      std::string msg = "tensor '" + escape(t.name) + "': data at offset " + num(t.offset) + " + " +
                        num(t.nbytes) + " bytes runs past the end of the file (data section has " +
                        num(avail) + " bytes)";
      in.fail(msg);
    }
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

[[noreturn]] void type_error(const std::string& path, const std::string& key, const GgufValue& v,
                             const char* want) {
  std::string msg = path + ": metadata '" + key + "' has type ";
  msg += gguf_type_name(v.type);
  msg += ", expected ";
  msg += want;
  throw Error(msg);
}

int64_t as_int(const std::string& path, const std::string& key, const GgufValue& v) {
  if (!v.is_integer()) type_error(path, key, v, "an integer");
  if (v.type == GgufType::U64 && v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw Error(path + ": metadata '" + key + "' value " + std::to_string(v.u) +
                " is out of range");
  }
  return v.i;
}

double as_float(const std::string& path, const std::string& key, const GgufValue& v) {
  if (v.is_float()) return v.f;
  if (v.is_integer()) return static_cast<double>(as_int(path, key, v));
  type_error(path, key, v, "a number");
}

}  // namespace

std::optional<std::string> GgufFile::find_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::String) type_error(path_, key, *v, "string");
  return v->s;
}

std::optional<int64_t> GgufFile::find_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  return as_int(path_, key, *v);
}

std::optional<double> GgufFile::find_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  return as_float(path_, key, *v);
}

std::optional<bool> GgufFile::find_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufType::Bool) type_error(path_, key, *v, "bool");
  return v->u != 0;
}

namespace {
[[noreturn]] void missing(const std::string& path, const std::string& key) {
  throw Error(path + ": missing metadata '" + key + "'");
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  auto v = find_string(key);
  if (!v) missing(path_, key);
  return *v;
}

int64_t GgufFile::get_int(const std::string& key) const {
  auto v = find_int(key);
  if (!v) missing(path_, key);
  return *v;
}

double GgufFile::get_float(const std::string& key) const {
  auto v = find_float(key);
  if (!v) missing(path_, key);
  return *v;
}

bool GgufFile::get_bool(const std::string& key) const {
  auto v = find_bool(key);
  if (!v) missing(path_, key);
  return *v;
}

const GgufValue& GgufFile::get_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) missing(path_, key);
  if (v->type != GgufType::Array) type_error(path_, key, *v, "array");
  return *v;
}

namespace {
[[noreturn]] void element_error(const std::string& path, const std::string& key, const GgufValue& a,
                                const char* want) {
  std::string msg = path + ": metadata '" + key + "' is an array of ";
  msg += gguf_type_name(a.elem_type);
  msg += ", expected ";
  msg += want;
  throw Error(msg);
}
}  // namespace

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  if (!has(key)) return {};
  const GgufValue& a = get_array(key);
  if (a.elem_type != GgufType::String) element_error(path_, key, a, "strings");
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const GgufValue& v : a.items) out.push_back(v.s);
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  if (!has(key)) return {};
  const GgufValue& a = get_array(key);
  if (!integer_type(a.elem_type)) element_error(path_, key, a, "integers");
  if (a.elem_type == GgufType::U64) {
    for (int64_t x : a.ints) {
      if (x < 0) throw Error(path_ + ": metadata '" + key + "' holds a u64 value out of range");
    }
  }
  return a.ints;
}

std::vector<float> GgufFile::get_float_array(const std::string& key) const {
  if (!has(key)) return {};
  const GgufValue& a = get_array(key);
  std::vector<float> out;
  if (a.elem_type == GgufType::F32 || a.elem_type == GgufType::F64) {
    out.reserve(a.floats.size());
    for (double x : a.floats) out.push_back(static_cast<float>(x));
  } else if (integer_type(a.elem_type) && a.elem_type != GgufType::U64) {
    out.reserve(a.ints.size());
    for (int64_t x : a.ints) out.push_back(static_cast<float>(x));
  } else {
    element_error(path_, key, a, "numbers");
  }
  return out;
}

TensorView GgufFile::view(const GgufTensorInfo& info) const {
  if (dtype_info(info.ggml_type) == nullptr) {
    throw Error(path_ + ": tensor '" + info.name + "': unsupported tensor type id " +
                std::to_string(info.ggml_type));
  }
  TensorView t;
  t.name = info.name;
  t.type = static_cast<DType>(info.ggml_type);
  t.shape = info.shape;
  t.data = base_ + data_offset_ + info.offset;
  t.nbytes = info.nbytes;
  return t;
}

bool gguf_arch_supported(const std::string& arch) {
  return arch == "llama" || arch == "mistral" || arch == "qwen2" || arch == "qwen3";
}

RopeLayout gguf_rope_layout(const std::string& arch) {
  return arch == "qwen2" || arch == "qwen3" ? RopeLayout::Half : RopeLayout::Interleaved;
}

ModelConfig gguf_config(const GgufFile& g) {
  ModelConfig c;
  c.format = "gguf";
  c.arch = g.get_string("general.architecture");
  check(gguf_arch_supported(c.arch),
        g.path() + ": general.architecture '" + c.arch +
            "' is not supported (expected llama, mistral, qwen2 or qwen3)");
  const std::string p = c.arch + ".";
  c.context_length = g.get_int(p + "context_length");
  c.dim = g.get_int(p + "embedding_length");
  c.n_layers = g.get_int(p + "block_count");
  c.n_heads = g.get_int(p + "attention.head_count");
  c.n_kv_heads = g.find_int(p + "attention.head_count_kv").value_or(c.n_heads);
  c.ffn_dim = g.get_int(p + "feed_forward_length");
  c.rope_theta = static_cast<float>(g.find_float(p + "rope.freq_base").value_or(10000.0));
  c.rms_eps = static_cast<float>(g.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rope_layout = gguf_rope_layout(c.arch);

  if (auto kl = g.find_int(p + "attention.key_length")) {
    c.head_dim = *kl;
  } else if (auto rd = g.find_int(p + "rope.dimension_count")) {
    c.head_dim = *rd;
  } else {
    check(c.n_heads > 0 && c.dim % c.n_heads == 0,
          g.path() + ": embedding length " + std::to_string(c.dim) +
              " is not a multiple of the head count " + std::to_string(c.n_heads));
    c.head_dim = c.dim / c.n_heads;
  }

  const std::string scaling = g.find_string(p + "rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    c.rope_scaling.kind = RopeScaling::Kind::Linear;
    c.rope_scaling.factor = static_cast<float>(g.get_float(p + "rope.scaling.factor"));
    check(c.rope_scaling.factor > 0, g.path() + ": rope.scaling.factor must be positive");
  } else if (scaling != "none") {
    throw Error(g.path() + ": unsupported rope scaling type '" + scaling + "'");
  } else if (auto lin = g.find_float(p + "rope.scale_linear"); lin && *lin != 1.0) {
    check(*lin > 0, g.path() + ": rope.scale_linear must be positive");
    c.rope_scaling.kind = RopeScaling::Kind::Linear;
    c.rope_scaling.factor = static_cast<float>(*lin);
  }

  const GgufTensorInfo* embd = nullptr;
  bool has_output = false;
  for (const GgufTensorInfo& t : g.tensor_infos()) {
    if (t.name == "token_embd.weight") embd = &t;
    if (t.name == "output.weight") has_output = true;
    if (t.name == "blk.0.attn_q.bias") c.attn_bias = true;
    if (t.name == "blk.0.attn_q_norm.weight") c.qk_norm = true;
    if (t.name == "blk.0.ffn_up.bias") c.mlp_bias = true;
    if (t.name == "rope_freqs.weight") {
      // Divisors of each rotary frequency, as llama.cpp applies them.
      const TensorView v = g.view(t);
      check(v.shape.size() == 1 && v.shape[0] * 2 == c.head_dim,
            g.path() + ": rope_freqs.weight has shape " + v.shape_str() + ", expected [" +
                std::to_string(c.head_dim / 2) + "]");
      check(dtype_info(v.type).block_elems == 1 && v.nbytes >= row_bytes(v.type, v.shape[0]),
            g.path() + ": rope_freqs.weight must be an unquantized vector");
      c.rope_scaling.freq_factors.resize(static_cast<size_t>(v.shape[0]));
      kernels::dequantize_row(v.type, v.data, c.rope_scaling.freq_factors.data(), v.shape[0]);
      for (float f : c.rope_scaling.freq_factors)
        check(std::isfinite(f) && f > 0,
              g.path() + ": rope_freqs.weight holds a value that is not a positive number");
    }
  }
  c.tied_embeddings = !has_output;
  if (const GgufValue* toks = g.find("tokenizer.ggml.tokens");
      toks && toks->type == GgufType::Array) {
    c.vocab_size = static_cast<int64_t>(toks->size());
  } else if (auto vs = g.find_int(p + "vocab_size")) {
    c.vocab_size = *vs;
  } else if (embd != nullptr && embd->shape.size() >= 2) {
    c.vocab_size = embd->shape[1];
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(g.path() + ": " + e.what());
  }
  return c;
}

Vocab gguf_vocab(const GgufFile& g) {
  Vocab v;
  if (!g.has("tokenizer.ggml.tokens")) return v;
  const std::string& path = g.path();
  v.model = g.find_string("tokenizer.ggml.model").value_or("llama");
  v.pre = g.find_string("tokenizer.ggml.pre").value_or("");
  v.tokens = g.get_string_array("tokenizer.ggml.tokens");
  const int64_t n = v.size();
  v.scores = g.get_float_array("tokenizer.ggml.scores");
  if (!v.scores.empty() && static_cast<int64_t>(v.scores.size()) != n) {
    throw Error(path + ": tokenizer.ggml.scores has " + std::to_string(v.scores.size()) +
                " entries for " + std::to_string(n) + " tokens");
  }
  const std::vector<int64_t> types = g.get_int_array("tokenizer.ggml.token_type");
  if (!types.empty() && static_cast<int64_t>(types.size()) != n) {
    throw Error(path + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                " entries for " + std::to_string(n) + " tokens");
  }
  v.types.reserve(types.size());
  for (size_t k = 0; k < types.size(); ++k) {
    if (types[k] < 0 || types[k] > static_cast<int64_t>(TokenType::Byte)) {
      throw Error(path + ": tokenizer.ggml.token_type[" + std::to_string(k) +
                  "] = " + std::to_string(types[k]) + " is not a known token type");
    }
    v.types.push_back(static_cast<TokenType>(types[k]));
  }
  v.merges = g.get_string_array("tokenizer.ggml.merges");

  // SentencePiece ("llama") vocabularies conventionally use <unk>=0, <s>=1,
  // </s>=2 and add BOS and a leading space; other models get no defaults.
  const bool spm = v.model == "llama";
  if (spm) {
    v.unk_id = n > 0 ? 0 : -1;
    v.bos_id = n > 1 ? 1 : -1;
    v.eos_id = n > 2 ? 2 : -1;
  } else {
    v.unk_id = v.bos_id = v.eos_id = -1;
  }
  v.add_bos = spm;
  v.add_space_prefix = spm;
  v.add_eos = false;
  auto id = [&](const char* key, int32_t& out, bool lenient) {
    auto x = g.find_int(key);
    if (!x) return;
    if (*x < 0 || *x >= n) {
      // Some converters write a padding id one past the vocabulary; treat it as absent.
      if (lenient) {
        out = -1;
        return;
      }
      throw Error(path + ": " + key + " = " + std::to_string(*x) +
                  " is outside the vocabulary of " + std::to_string(n) + " tokens");
    }
    out = static_cast<int32_t>(*x);
  };
  id("tokenizer.ggml.bos_token_id", v.bos_id, false);
  id("tokenizer.ggml.eos_token_id", v.eos_id, false);
  id("tokenizer.ggml.unknown_token_id", v.unk_id, false);
  id("tokenizer.ggml.padding_token_id", v.pad_id, true);
  if (auto b = g.find_bool("tokenizer.ggml.add_bos_token")) v.add_bos = *b;
  if (auto b = g.find_bool("tokenizer.ggml.add_eos_token")) v.add_eos = *b;
  if (auto b = g.find_bool("tokenizer.ggml.add_space_prefix")) v.add_space_prefix = *b;
  v.chat_template = g.find_string("tokenizer.chat_template").value_or("");
  return v;
}

namespace {
std::vector<std::pair<std::string, std::string>> printable_metadata(const GgufFile& g) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(g.metadata().size());
  for (const auto& [key, value] : g.metadata()) out.emplace_back(key, value.to_string());
  return out;
}
}  // namespace

ModelFile read_gguf(const std::string& path) {
  return gguf_model(GgufFile(path));
}

ModelFile gguf_model(const GgufFile& g) {
  const std::string& path = g.path();
  ModelFile m;
  m.config = gguf_config(g);
  for (const GgufTensorInfo& info : g.tensor_infos()) m.tensors.emplace(info.name, g.view(info));
  m.vocab = gguf_vocab(g);
  m.metadata = printable_metadata(g);
  if (g.mapping()) m.mappings.push_back(g.mapping());
  if (const TensorView* e = m.find("token_embd.weight");
      e && !m.vocab.empty() && e->shape.size() >= 2 && e->shape[1] != m.vocab.size()) {
    throw Error(path + ": inconsistent shapes: token_embd.weight has " +
                std::to_string(e->shape[1]) + " rows but the tokenizer has " +
                std::to_string(m.vocab.size()) + " tokens");
  }
  check_tensor_shapes(m, path);
  return m;
}

ModelFile read_gguf_vocab_only(const std::string& path) {
  GgufFile g(path);
  ModelFile m;
  m.config.format = "gguf";
  if (auto arch = g.find_string("general.architecture")) m.config.arch = *arch;
  m.vocab = gguf_vocab(g);
  m.metadata = printable_metadata(g);
  return m;
}

Vocab read_gguf_vocab(const std::string& path) {
  GgufFile g(path);
  return gguf_vocab(g);
}

}  // namespace nucleus
