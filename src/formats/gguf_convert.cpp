#include "formats/gguf_convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <thread>

#include "formats/gguf.h"
#include "formats/random_normal.h"
#include "kernels/dtype.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace nucleus {

namespace {

// One tensor to write: its GGUF description and how to produce row r
// (shape[0] floats) — or, for a byte-for-byte copy, the source bytes.
struct OutTensor {
  std::string name;
  std::vector<int64_t> shape;
  DType type = DType::F32;
  std::function<void(int64_t row, float* dst)> row;
  const uint8_t* copy_from = nullptr;
};

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Streams every tensor through the writer; rows are produced and encoded in
// parallel chunks of bounded size, so memory stays small for any model.
void write_tensors(GgufWriter& w, const std::vector<OutTensor>& tensors, int threads) {
  ThreadPool pool(resolve_threads(threads));
  constexpr size_t kChunkBytes = size_t{16} << 20;
  std::vector<uint8_t> chunk;
  for (const OutTensor& t : tensors) {
    const int64_t cols = t.shape[0];
    int64_t rows = 1;
    for (size_t d = 1; d < t.shape.size(); ++d) rows *= t.shape[d];
    const size_t rb = row_bytes(t.type, cols);
    if (t.copy_from != nullptr) {
      w.write(t.copy_from, rb * static_cast<size_t>(rows));
      continue;
    }
    const int64_t chunk_rows = std::max<int64_t>(1, static_cast<int64_t>(kChunkBytes / rb));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - r0);
      chunk.resize(rb * static_cast<size_t>(n));
      const int64_t n_tasks = std::min<int64_t>(n, static_cast<int64_t>(pool.size()) * 4);
      pool.parallel_for(n_tasks, [&](int64_t task) {
        std::vector<float> buf(static_cast<size_t>(cols));
        const int64_t a = n * task / n_tasks;
        const int64_t b = n * (task + 1) / n_tasks;
        for (int64_t r = a; r < b; ++r) {
          t.row(r0 + r, buf.data());
          kernels::quantize_row(t.type, buf.data(), chunk.data() + rb * static_cast<size_t>(r),
                                cols);
        }
      });
      w.write(chunk.data(), chunk.size());
    }
  }
}

// Canonical tensor order (llama.cpp's): globals, then each block's tensors.
int block_rank(const std::string& suffix) {
  static const char* kOrder[] = {"attn_q.weight",    "attn_q.bias",      "attn_q_norm.weight",
                                 "attn_k.weight",    "attn_k.bias",      "attn_k_norm.weight",
                                 "attn_v.weight",    "attn_v.bias",      "attn_output.weight",
                                 "attn_output.bias", "attn_norm.weight", "ffn_gate.weight",
                                 "ffn_gate.bias",    "ffn_down.weight",  "ffn_down.bias",
                                 "ffn_up.weight",    "ffn_up.bias",      "ffn_norm.weight"};
  for (size_t i = 0; i < std::size(kOrder); ++i)
    if (suffix == kOrder[i]) return static_cast<int>(i);
  return static_cast<int>(std::size(kOrder));
}

struct SortKey {
  int group;  // 0 globals, 1 blocks, 2 others
  int64_t block;
  int rank;
  std::string name;
  bool operator<(const SortKey& o) const {
    return std::tie(group, block, rank, name) < std::tie(o.group, o.block, o.rank, o.name);
  }
};

SortKey sort_key(const std::string& name) {
  if (name == "token_embd.weight") return {0, 0, 0, name};
  if (name == "rope_freqs.weight") return {0, 0, 1, name};
  if (name == "output_norm.weight") return {0, 0, 2, name};
  if (name == "output.weight") return {0, 0, 3, name};
  if (name.rfind("blk.", 0) == 0) {
    const size_t dot = name.find('.', 4);
    if (dot != std::string::npos && dot > 4 && dot - 4 < 7) {
      int64_t b = 0;
      bool digits = true;
      for (size_t i = 4; i < dot; ++i) {
        if (name[i] < '0' || name[i] > '9')
          digits = false;
        else
          b = b * 10 + (name[i] - '0');
      }
      if (digits) return {1, b, block_rank(name.substr(dot + 1)), name};
    }
  }
  return {2, 0, 0, name};
}

void add_model_metadata(GgufWriter& w, const ModelConfig& c, DType type, const std::string& name) {
  check(gguf_arch_supported(c.arch),
        "GGUF writer: architecture '" + c.arch + "' has no GGUF form here");
  // llama.cpp keys every hyperparameter by the architecture's name.
  const std::string a = c.arch + ".";
  auto u32 = [](int64_t v, const char* what) {
    check(v >= 0 && v <= 0xffffffffLL,
          std::string("GGUF writer: ") + what + " " + std::to_string(v) + " does not fit in u32");
    return static_cast<uint32_t>(v);
  };
  w.add_string("general.architecture", c.arch);
  w.add_string("general.name", name.empty() ? c.arch : name);
  w.add_u32("general.file_type", gguf_file_type(type));
  w.add_u32(a + "vocab_size", u32(c.vocab_size, "vocab size"));
  w.add_u32(a + "context_length", u32(c.context_length, "context length"));
  w.add_u32(a + "embedding_length", u32(c.dim, "embedding length"));
  w.add_u32(a + "block_count", u32(c.n_layers, "block count"));
  w.add_u32(a + "feed_forward_length", u32(c.ffn_dim, "feed-forward length"));
  w.add_u32(a + "rope.dimension_count", u32(c.head_dim, "head size"));
  w.add_u32(a + "attention.head_count", u32(c.n_heads, "head count"));
  w.add_u32(a + "attention.head_count_kv", u32(c.n_kv_heads, "KV head count"));
  if (c.head_dim * c.n_heads != c.dim) {
    w.add_u32(a + "attention.key_length", u32(c.head_dim, "head size"));
    w.add_u32(a + "attention.value_length", u32(c.head_dim, "head size"));
  }
  w.add_f32(a + "attention.layer_norm_rms_epsilon", c.rms_eps);
  w.add_f32(a + "rope.freq_base", c.rope_theta);
  if (c.rope_scaling.kind == RopeScaling::Kind::Linear) {
    w.add_string(a + "rope.scaling.type", "linear");
    w.add_f32(a + "rope.scaling.factor", c.rope_scaling.factor);
  }
}

void add_vocab_metadata(GgufWriter& w, const Vocab& v, const ModelConfig& c) {
  check(v.size() <= c.vocab_size || c.vocab_size == 0,
        "GGUF writer: vocabulary of " + std::to_string(v.size()) +
            " tokens is larger than the model's " + std::to_string(c.vocab_size));
  std::vector<std::string> tokens = v.tokens;
  std::vector<float> scores = v.scores;
  std::vector<int32_t> types;
  for (TokenType t : v.types) types.push_back(static_cast<int32_t>(t));
  // llama.cpp pads a short vocabulary with placeholder tokens the model never emits.
  for (int64_t id = v.size(); id < c.vocab_size; ++id) {
    std::string pad = "[PAD";
    pad += std::to_string(id);
    pad += "]";
    tokens.push_back(pad);
    if (!v.scores.empty()) scores.push_back(0.0f);
    if (!v.types.empty()) types.push_back(static_cast<int32_t>(TokenType::UserDefined));
  }
  w.add_string("tokenizer.ggml.model", v.model);
  if (!v.pre.empty()) w.add_string("tokenizer.ggml.pre", v.pre);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  if (!scores.empty()) w.add_f32_array("tokenizer.ggml.scores", scores);
  if (!types.empty()) w.add_i32_array("tokenizer.ggml.token_type", types);
  if (!v.merges.empty()) w.add_string_array("tokenizer.ggml.merges", v.merges);
  const int32_t bos = v.bos_id >= 0 ? v.bos_id : c.bos_id;
  const int32_t eos = v.eos_id >= 0 ? v.eos_id : (c.eos_ids.empty() ? -1 : c.eos_ids[0]);
  auto id = [&](const char* key, int32_t value) {
    if (value < 0) return;
    check(value < static_cast<int64_t>(tokens.size()), std::string("GGUF writer: ") + key + " " +
                                                           std::to_string(value) +
                                                           " is outside the vocabulary");
    w.add_u32(key, static_cast<uint32_t>(value));
  };
  id("tokenizer.ggml.bos_token_id", bos);
  id("tokenizer.ggml.eos_token_id", eos);
  id("tokenizer.ggml.unknown_token_id", v.unk_id);
  id("tokenizer.ggml.padding_token_id", v.pad_id);
  w.add_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  w.add_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  if (!v.chat_template.empty()) w.add_string("tokenizer.chat_template", v.chat_template);
}

// Llama 3's frequency-dependent RoPE scaling as llama.cpp stores it: one
// divisor per rotary pair, applied to that pair's base frequency.
std::vector<float> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const double pi = 3.14159265358979323846;
  const double old_ctx = static_cast<double>(s.original_max_position);
  const double low_wavelen = old_ctx / s.low_freq_factor;
  const double high_wavelen = old_ctx / s.high_freq_factor;
  std::vector<float> f;
  for (int64_t i = 0; i < c.head_dim; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(c.rope_theta),
                                       static_cast<double>(i) / static_cast<double>(c.head_dim));
    const double wavelen = 2.0 * pi / freq;
    double factor = 1.0;
    if (wavelen > low_wavelen) {
      factor = s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth =
          (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      factor = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    f.push_back(static_cast<float>(factor));
  }
  return f;
}

bool is_float_type(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

}  // namespace

uint32_t gguf_file_type(DType t) {
  switch (t) {
    case DType::F32:
      return 0;
    case DType::F16:
      return 1;
    case DType::Q4_0:
      return 2;
    case DType::Q8_0:
      return 7;
    case DType::BF16:
      return 32;
    // llama_ftype has no plain K-quant entries: an all-Q4_K file is Q4_K_S etc.
    case DType::Q4_1:
      return 3;
    case DType::Q5_0:
      return 8;
    case DType::Q5_1:
      return 9;
    case DType::Q2_K:
      return 10;
    case DType::Q3_K:
      return 11;
    case DType::Q4_K:
      return 14;
    case DType::Q5_K:
      return 16;
    case DType::Q6_K:
      return 18;
    case DType::IQ4_NL:
      return 25;
    case DType::IQ4_XS:
      return 30;
  }
  throw Error("gguf_file_type: unsupported type");
}

DType gguf_output_type(const TensorView& src, DType requested) {
  if (src.shape.size() != 2) return DType::F32;
  if (src.shape[0] % dtype_info(requested).block_elems == 0) return requested;
  return is_float_type(src.type) ? src.type : DType::F32;
}

void write_gguf(const ModelFile& model, const std::string& out_path,
                const GgufConvertOptions& opt) {
  const ModelConfig& c = model.config;
  c.validate();
  // The file's pairing is its architecture's (llama.cpp's rope type): llama
  // and mistral files hold interleaved rows, so HF rows are permuted; qwen2
  // and qwen3 files keep HF's rotate-half rows (as llama.cpp's converter does).
  const RopeLayout target = gguf_rope_layout(c.arch);
  check(c.rope_layout == target || c.rope_layout == RopeLayout::Half,
        "GGUF writer: cannot write interleaved Q/K rows as a rotate-half " + c.arch + " file");
  const bool unpermute = c.rope_layout != target;
  const int64_t hd = c.head_dim;

  std::map<SortKey, const TensorView*> ordered;
  for (const auto& [name, view] : model.tensors) {
    if (name == "output.weight" && c.tied_embeddings) continue;
    ordered.emplace(sort_key(name), &view);
  }

  std::vector<float> rope_factors;
  if (c.rope_scaling.kind == RopeScaling::Kind::Llama3 &&
      !model.tensors.contains("rope_freqs.weight"))
    rope_factors = llama3_rope_factors(c);

  std::vector<OutTensor> out;
  if (!rope_factors.empty()) {
    OutTensor t;
    t.name = "rope_freqs.weight";
    t.shape = {static_cast<int64_t>(rope_factors.size())};
    t.type = DType::F32;
    t.copy_from = reinterpret_cast<const uint8_t*>(rope_factors.data());
    out.push_back(std::move(t));
  }
  for (const auto& [key, view] : ordered) {
    const TensorView& v = *view;
    check(!v.shape.empty() && v.numel() > 0, "GGUF writer: tensor '" + v.name + "' is empty");
    OutTensor t;
    t.name = v.name;
    t.shape = v.shape;
    t.type = gguf_output_type(v, opt.type);
    const bool qk = v.name.ends_with(".attn_q.weight") || v.name.ends_with(".attn_k.weight") ||
                    v.name.ends_with(".attn_q.bias") || v.name.ends_with(".attn_k.bias");
    const bool permute = unpermute && qk;
    const int64_t cols = v.shape[0];
    const size_t in_rb = row_bytes(v.type, cols);
    check(in_rb * static_cast<size_t>(v.rows()) == v.nbytes,
          "GGUF writer: tensor '" + v.name + "' size does not match its shape");
    if (permute) {
      check(
          v.shape.size() <= 2 && hd > 0 && (v.shape.size() == 1 ? cols : v.rows()) % hd == 0,
          "GGUF writer: tensor '" + v.name + "' rows are not whole heads of " + std::to_string(hd));
    }
    if (t.type == v.type && !permute) {
      t.copy_from = v.data;
    } else if (permute && v.shape.size() == 1) {
      // A bias: its elements follow the rows of the matching weight.
      const DType st = v.type;
      const uint8_t* data = v.data;
      t.row = [st, data, cols, hd](int64_t, float* dst) {
        std::vector<float> src(static_cast<size_t>(cols));
        kernels::dequantize_row(st, data, src.data(), cols);
        for (int64_t r = 0; r < cols; ++r) {
          const int64_t h = r / hd, w = r % hd;
          dst[r] = src[static_cast<size_t>(h * hd + (w % 2) * (hd / 2) + w / 2)];
        }
      };
    } else {
      const DType st = v.type;
      const uint8_t* data = v.data;
      t.row = [st, data, cols, in_rb, hd, permute](int64_t r, float* dst) {
        int64_t src_row = r;
        if (permute) {
          const int64_t h = r / hd, w = r % hd;
          src_row = h * hd + (w % 2) * (hd / 2) + w / 2;
        }
        kernels::dequantize_row(st, data + static_cast<size_t>(src_row) * in_rb, dst, cols);
      };
    }
    out.push_back(std::move(t));
  }

  GgufWriter w;
  add_model_metadata(w, c, opt.type, opt.name);
  if (!model.vocab.empty()) add_vocab_metadata(w, model.vocab, c);
  for (const OutTensor& t : out) w.add_tensor(t.name, t.type, t.shape);
  w.begin(out_path);
  write_tensors(w, out, opt.threads);
  w.finish();
}

namespace {

template <typename T>
void put_pod(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// GGUF's byte layout of a value's payload (without its type tag).
void encode_value(const GgufValue& v, std::string& out) {
  switch (v.type) {
    case GgufType::U8:
      put_pod(out, static_cast<uint8_t>(v.u));
      return;
    case GgufType::I8:
      put_pod(out, static_cast<int8_t>(v.i));
      return;
    case GgufType::U16:
      put_pod(out, static_cast<uint16_t>(v.u));
      return;
    case GgufType::I16:
      put_pod(out, static_cast<int16_t>(v.i));
      return;
    case GgufType::U32:
      put_pod(out, static_cast<uint32_t>(v.u));
      return;
    case GgufType::I32:
      put_pod(out, static_cast<int32_t>(v.i));
      return;
    case GgufType::U64:
      put_pod(out, v.u);
      return;
    case GgufType::I64:
      put_pod(out, v.i);
      return;
    case GgufType::F32:
      put_pod(out, static_cast<float>(v.f));
      return;
    case GgufType::F64:
      put_pod(out, v.f);
      return;
    case GgufType::Bool:
      put_pod(out, static_cast<uint8_t>(v.u != 0 || v.i != 0));
      return;
    case GgufType::String:
      put_pod(out, static_cast<uint64_t>(v.s.size()));
      out += v.s;
      return;
    case GgufType::Array: {
      put_pod(out, static_cast<uint32_t>(v.elem_type));
      put_pod(out, static_cast<uint64_t>(v.size()));
      // The reader keeps numeric elements compactly (ints / floats) and the
      // rest as values (items); exactly one of the three is filled.
      for (const GgufValue& item : v.items) encode_value(item, out);
      GgufValue scalar;
      scalar.type = v.elem_type;
      for (int64_t x : v.ints) {
        scalar.i = x;
        scalar.u = static_cast<uint64_t>(x);
        encode_value(scalar, out);
      }
      for (double x : v.floats) {
        scalar.f = x;
        encode_value(scalar, out);
      }
      return;
    }
  }
  throw Error("GGUF writer: cannot encode metadata of unknown type");
}

}  // namespace

void requantize_gguf(const std::string& in_path, const std::string& out_path,
                     const GgufConvertOptions& opt) {
  const GgufFile in(in_path);
  GgufWriter w;
  for (const auto& [key, value] : in.metadata()) {
    // The writer always uses 32-byte alignment; file_type describes the new tensors.
    if (key == "general.file_type" || key == "general.alignment") continue;
    std::string payload;
    encode_value(value, payload);
    w.add_encoded(key, static_cast<uint32_t>(value.type), payload);
  }
  w.add_u32("general.file_type",
            opt.file_type >= 0 ? static_cast<uint32_t>(opt.file_type) : gguf_file_type(opt.type));

  std::vector<OutTensor> out;
  for (const GgufTensorInfo& info : in.tensor_infos()) {
    const TensorView v = in.view(info);
    OutTensor t;
    t.name = v.name;
    t.shape = v.shape;
    // 1-D tensors keep their type here: the source may be anything GGUF allows.
    t.type = v.shape.size() != 2 ? v.type
             : opt.matrix_type   ? opt.matrix_type(v)
                                 : gguf_output_type(v, opt.type);
    if (t.type == v.type) {
      t.copy_from = v.data;
    } else {
      const DType st = v.type;
      const uint8_t* data = v.data;
      const int64_t cols = v.shape[0];
      const size_t in_rb = row_bytes(st, cols);
      t.row = [st, data, cols, in_rb](int64_t r, float* dst) {
        kernels::dequantize_row(st, data + static_cast<size_t>(r) * in_rb, dst, cols);
      };
    }
    out.push_back(std::move(t));
  }
  for (const OutTensor& t : out) w.add_tensor(t.name, t.type, t.shape);
  check(out_path != in_path, in_path + ": quantize would overwrite its own input");
  w.begin(out_path);
  write_tensors(w, out, opt.threads);
  w.finish();
}

RandomModelSpec parse_random_spec(const std::string& shape) {
  RandomModelSpec s;
  s.name = shape;
  if (shape == "tinyllama-1.1b") {
    s.dim = 2048, s.n_layers = 22, s.n_heads = 32, s.n_kv_heads = 4, s.ffn_dim = 5632;
    s.vocab_size = 32000, s.context_length = 2048;
    return s;
  }
  if (shape == "llama-7b") {
    s.dim = 4096, s.n_layers = 32, s.n_heads = 32, s.n_kv_heads = 32, s.ffn_dim = 11008;
    s.vocab_size = 32000, s.context_length = 4096;
    return s;
  }
  if (shape == "llama3-8b") {
    s.dim = 4096, s.n_layers = 32, s.n_heads = 32, s.n_kv_heads = 8, s.ffn_dim = 14336;
    s.vocab_size = 128256, s.context_length = 8192, s.rope_theta = 500000.0f;
    return s;
  }
  check(shape.find('=') != std::string::npos,
        "random model shape '" + shape +
            "' is not tinyllama-1.1b, llama-7b, llama3-8b or dim=..,layers=..,heads=..,"
            "kv_heads=..,ffn=..,vocab=..,ctx=..");
  s.name = "random";
  size_t pos = 0;
  while (pos <= shape.size()) {
    size_t end = shape.find(',', pos);
    if (end == std::string::npos) end = shape.size();
    const std::string item = shape.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    check(eq != std::string::npos, "random model shape: '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq);
    const std::string val = item.substr(eq + 1);
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(val, &used);
      check(used == val.size(), "");
    } catch (const std::exception&) {
      throw Error("random model shape: " + key + " value '" + val + "' is not a number");
    }
    auto integer = [&](int64_t* out) {
      check(x >= 1 && x < 1e9 && x == std::floor(x),
            "random model shape: " + key + " must be a positive integer, got '" + val + "'");
      *out = static_cast<int64_t>(x);
    };
    if (key == "dim")
      integer(&s.dim);
    else if (key == "layers")
      integer(&s.n_layers);
    else if (key == "heads")
      integer(&s.n_heads);
    else if (key == "kv_heads")
      integer(&s.n_kv_heads);
    else if (key == "ffn")
      integer(&s.ffn_dim);
    else if (key == "vocab")
      integer(&s.vocab_size);
    else if (key == "ctx")
      integer(&s.context_length);
    else if (key == "rope_theta")
      s.rope_theta = static_cast<float>(x);
    else if (key == "rms_eps")
      s.rms_eps = static_cast<float>(x);
    else
      throw Error("random model shape: unknown key '" + key + "'");
  }
  fill_random_spec_defaults(s);
  return s;
}

void fill_random_spec_defaults(RandomModelSpec& s) {
  check(s.dim > 0, "random model shape: dim is required (e.g. --random dim=256)");
  if (s.n_heads == 0) {
    // 64-wide heads, as in every Llama size; narrower models get fewer heads,
    // down to one head of the whole width. The head size must stay even (RoPE).
    s.n_heads = std::max<int64_t>(1, s.dim / 64);
    while (s.n_heads > 1 && (s.dim % s.n_heads != 0 || (s.dim / s.n_heads) % 2 != 0)) --s.n_heads;
  }
  if (s.n_kv_heads == 0) s.n_kv_heads = s.n_heads;
  if (s.ffn_dim == 0) {
    // Meta's Llama rule: 2/3 of 4·dim, rounded up to a multiple of 256
    // (4096 -> 11008, 2048 -> 5632).
    const int64_t hidden = 2 * (4 * s.dim) / 3;
    s.ffn_dim = (hidden + 255) / 256 * 256;
  }
  if (s.n_layers == 0) s.n_layers = 2;
  if (s.vocab_size == 0) s.vocab_size = 32000;  // Llama 2's
  if (s.context_length == 0) s.context_length = 2048;
}

Vocab synthetic_vocab(int64_t n) {
  Vocab v;
  v.model = "llama";
  auto add = [&](std::string tok, TokenType type, float score) {
    v.tokens.push_back(std::move(tok));
    v.types.push_back(type);
    v.scores.push_back(score);
  };
  const char* specials[] = {"<unk>", "<s>", "</s>"};
  const TokenType special_types[] = {TokenType::Unknown, TokenType::Control, TokenType::Control};
  for (int i = 0; i < 3 && v.size() < n; ++i) add(specials[i], special_types[i], 0.0f);
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256 && v.size() < n; ++b) {
    std::string t = "<0x";
    t += kHex[b >> 4];
    t += kHex[b & 15];
    t += '>';
    add(t, TokenType::Byte, 0.0f);
  }
  int64_t rank = 0;
  while (v.size() < n) {
    std::string t = "\xe2\x96\x81tok";  // U+2581, SentencePiece's word boundary
    t += std::to_string(v.size());
    add(t, TokenType::Normal, -static_cast<float>(rank++));
  }
  v.unk_id = n > 0 ? 0 : -1;
  v.bos_id = n > 1 ? 1 : -1;
  v.eos_id = n > 2 ? 2 : -1;
  return v;
}

void write_random_gguf(const RandomModelSpec& spec_in, const std::string& out_path,
                       const GgufConvertOptions& opt, uint64_t seed, const Vocab* vocab) {
  RandomModelSpec spec = spec_in;
  if (vocab != nullptr && vocab->size() > spec.vocab_size) spec.vocab_size = vocab->size();
  ModelConfig c;
  c.dim = spec.dim;
  c.n_layers = spec.n_layers;
  c.n_heads = spec.n_heads;
  c.n_kv_heads = spec.n_kv_heads;
  c.head_dim = spec.n_heads > 0 ? spec.dim / spec.n_heads : 0;
  c.ffn_dim = spec.ffn_dim;
  c.vocab_size = spec.vocab_size;
  c.context_length = spec.context_length;
  c.rope_theta = spec.rope_theta;
  c.rms_eps = spec.rms_eps;
  check(spec.n_heads > 0 && spec.dim % spec.n_heads == 0,
        "random model: dim " + std::to_string(spec.dim) + " is not a multiple of heads " +
            std::to_string(spec.n_heads));
  c.validate();

  struct Shape {
    std::string name;
    std::vector<int64_t> shape;
    bool norm;
  };
  std::vector<Shape> shapes;
  shapes.push_back({"token_embd.weight", {c.dim, c.vocab_size}, false});
  shapes.push_back({"output_norm.weight", {c.dim}, true});
  shapes.push_back({"output.weight", {c.dim, c.vocab_size}, false});
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    shapes.push_back({b + "attn_q.weight", {c.dim, c.q_dim()}, false});
    shapes.push_back({b + "attn_k.weight", {c.dim, c.kv_dim()}, false});
    shapes.push_back({b + "attn_v.weight", {c.dim, c.kv_dim()}, false});
    shapes.push_back({b + "attn_output.weight", {c.q_dim(), c.dim}, false});
    shapes.push_back({b + "attn_norm.weight", {c.dim}, true});
    shapes.push_back({b + "ffn_gate.weight", {c.dim, c.ffn_dim}, false});
    shapes.push_back({b + "ffn_down.weight", {c.ffn_dim, c.dim}, false});
    shapes.push_back({b + "ffn_up.weight", {c.dim, c.ffn_dim}, false});
    shapes.push_back({b + "ffn_norm.weight", {c.dim}, true});
  }

  std::vector<OutTensor> out;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    OutTensor t;
    t.name = s.name;
    t.shape = s.shape;
    TensorView probe;
    probe.type = DType::F32;
    probe.shape = s.shape;
    t.type = gguf_output_type(probe, opt.type);
    const int64_t cols = s.shape[0];
    if (s.norm) {
      t.row = [cols](int64_t, float* dst) { std::fill(dst, dst + cols, 1.0f); };
    } else {
      const NormalStream key = normal_stream(seed, i);
      t.row = [key, cols](int64_t r, float* dst) {
        normal_fill(key, static_cast<uint64_t>(r) * static_cast<uint64_t>(cols), cols, 0.02f, dst);
      };
    }
    out.push_back(std::move(t));
  }

  const Vocab v = vocab != nullptr ? *vocab : synthetic_vocab(c.vocab_size);
  GgufWriter w;
  add_model_metadata(w, c, opt.type, opt.name.empty() ? spec.name : opt.name);
  add_vocab_metadata(w, v, c);
  for (const OutTensor& t : out) w.add_tensor(t.name, t.type, t.shape);
  w.begin(out_path);
  write_tensors(w, out, opt.threads);
  w.finish();
}

}  // namespace nucleus
