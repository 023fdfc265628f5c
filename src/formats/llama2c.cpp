#include "formats/llama2c.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

#include "util/error.h"
#include "util/mapped_file.h"

namespace nucleus {

namespace {

constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);
constexpr uint32_t kVersionedMagic = 0x616b3432;  // "ak42": llama2.c's v1+ exports

int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct Header {
  ModelConfig config;
  bool shared_classifier = true;
};

Header read_header(const MappedFile& f) {
  const std::string& path = f.path();
  if (f.size() >= 4 && load_i32(f.data()) == static_cast<int32_t>(kVersionedMagic)) {
    throw Error(
        path +
        ": llama2.c versioned export (magic ak42) is not supported; use the legacy v0 format");
  }
  if (f.size() < kHeaderBytes) {
    throw Error(path + ": too short for a llama2.c header (" + std::to_string(f.size()) +
                " bytes, need 28)");
  }
  const uint8_t* p = f.data();
  const int32_t dim = load_i32(p), hidden = load_i32(p + 4), layers = load_i32(p + 8),
                heads = load_i32(p + 12), kv_heads = load_i32(p + 16), vocab = load_i32(p + 20),
                seq_len = load_i32(p + 24);
  auto positive = [&](int64_t v, const char* field) {
    if (v <= 0) {
      throw Error(path + ": llama2.c header field " + field + " = " + std::to_string(v) +
                  " must be positive (not a GGUF or llama2.c model file?)");
    }
  };
  positive(dim, "dim");
  positive(hidden, "hidden_dim");
  positive(layers, "n_layers");
  positive(heads, "n_heads");
  positive(kv_heads, "n_kv_heads");
  // A negative vocab_size marks an unshared classifier; INT32_MIN has no magnitude.
  if (vocab == 0 || vocab == INT32_MIN) {
    throw Error(path + ": llama2.c header field vocab_size = " + std::to_string(vocab) +
                " is invalid (not a GGUF or llama2.c model file?)");
  }
  positive(seq_len, "seq_len");
  if (dim % heads != 0) {
    throw Error(path + ": llama2.c header: dim " + std::to_string(dim) +
                " is not a multiple of n_heads " + std::to_string(heads) +
                " (not a GGUF or llama2.c model file?)");
  }
  Header h;
  ModelConfig& c = h.config;
  c.arch = "llama";
  c.format = "llama2c";
  c.dim = dim;
  c.ffn_dim = hidden;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = dim / heads;
  c.vocab_size = vocab < 0 ? -static_cast<int64_t>(vocab) : vocab;
  c.context_length = seq_len;
  c.rope_theta = 10000.0f;
  c.rms_eps = 1e-5f;
  c.rope_layout = RopeLayout::Interleaved;
  h.shared_classifier = vocab > 0;
  c.tied_embeddings = h.shared_classifier;
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return h;
}

std::string to_spm_text(const std::string& text) {
  if (text == "\n<s>\n") return "<s>";
  if (text == "\n</s>\n") return "</s>";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    if (ch == ' ') {
      out += "\xe2\x96\x81";
    } else {
      out += ch;
    }
  }
  return out;
}

bool is_byte_token(const std::string& t) {
  auto hex = [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') || (ch >= 'a' && ch <= 'f');
  };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

}  // namespace

Vocab read_llama2c_vocab(const std::string& path, int64_t vocab_size) {
  MappedFile f(path);
  const uint8_t* p = f.data();
  const size_t size = f.size();
  if (size < 4) throw Error(path + ": too short for a llama2.c tokenizer (no max_token_length)");
  const int32_t max_len = load_i32(p);
  if (max_len <= 0) {
    throw Error(path + ": llama2.c tokenizer max_token_length = " + std::to_string(max_len) +
                " must be positive");
  }
  Vocab v;
  v.model = "llama";
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  v.add_eos = false;
  v.add_space_prefix = true;
  size_t pos = 4;
  // Each token takes at least 8 bytes, which bounds the reservation.
  if (vocab_size > 0)
    v.tokens.reserve(static_cast<size_t>(std::min<int64_t>(vocab_size, size / 8)));
  for (int64_t id = 0; vocab_size <= 0 ? pos < size : id < vocab_size; ++id) {
    if (size - pos < 8) {
      std::string msg =
          path + ": truncated llama2.c tokenizer: token " + std::to_string(id) + " of ";
      msg += vocab_size > 0 ? std::to_string(vocab_size) : std::string("?");
      msg += " needs 8 header bytes at offset " + std::to_string(pos);
      throw Error(msg);
    }
    float score;
    std::memcpy(&score, p + pos, sizeof score);
    const int32_t len = load_i32(p + pos + 4);
    pos += 8;
    if (len < 0 || static_cast<size_t>(len) > size - pos) {
      throw Error(path + ": llama2.c tokenizer: token " + std::to_string(id) + " length " +
                  std::to_string(len) + " at offset " + std::to_string(pos - 4) +
                  " is negative or runs past the end of the file");
    }
    const std::string text(reinterpret_cast<const char*>(p + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    v.tokens.push_back(to_spm_text(text));
    v.scores.push_back(score);
    TokenType type = TokenType::Normal;
    if (id == 0) {
      type = TokenType::Unknown;
    } else if (id <= 2) {
      type = TokenType::Control;
    } else if (is_byte_token(text)) {
      type = TokenType::Byte;
    }
    v.types.push_back(type);
  }
  if (pos != size) {
    throw Error(path + ": llama2.c tokenizer has " + std::to_string(size - pos) +
                " bytes after token " + std::to_string(vocab_size - 1) +
                " (tokenizer for a larger vocabulary than the model's " +
                std::to_string(vocab_size) + "?)");
  }
  if (v.tokens.size() < 3) throw Error(path + ": llama2.c tokenizer has fewer than 3 tokens");
  return v;
}

ModelFile read_llama2c(const std::string& path, const std::string& tokenizer_path,
                       bool vocab_only) {
  auto file = std::make_shared<MappedFile>(path);
  const Header h = read_header(*file);
  const ModelConfig& c = h.config;
  ModelFile m;
  m.config = c;
  m.metadata = {
      {"format", "llama2.c (legacy v0)"},
      {"dim", std::to_string(c.dim)},
      {"hidden_dim", std::to_string(c.ffn_dim)},
      {"n_layers", std::to_string(c.n_layers)},
      {"n_heads", std::to_string(c.n_heads)},
      {"n_kv_heads", std::to_string(c.n_kv_heads)},
      {"vocab_size", std::to_string(c.vocab_size)},
      {"seq_len", std::to_string(c.context_length)},
      {"shared_classifier", h.shared_classifier ? "true" : "false"},
  };
  if (!tokenizer_path.empty()) m.vocab = read_llama2c_vocab(tokenizer_path, c.vocab_size);
  if (vocab_only) return m;

  // validate() bounds every dimension, so these element counts fit in int64.
  const int64_t dim = c.dim, hidden = c.ffn_dim, L = c.n_layers, q_dim = c.q_dim(),
                kv_dim = c.kv_dim(), vocab = c.vocab_size;
  const int64_t freq = c.context_length * c.head_dim / 2;
  struct Piece {
    std::string name;  // "%d" marks a per-layer tensor
    std::vector<int64_t> shape;
    bool per_layer;
  };
  std::vector<Piece> order = {
      {"token_embd.weight", {dim, vocab}, false},
      {"blk.%d.attn_norm.weight", {dim}, true},
      {"blk.%d.attn_q.weight", {dim, q_dim}, true},
      {"blk.%d.attn_k.weight", {dim, kv_dim}, true},
      {"blk.%d.attn_v.weight", {dim, kv_dim}, true},
      {"blk.%d.attn_output.weight", {q_dim, dim}, true},
      {"blk.%d.ffn_norm.weight", {dim}, true},
      {"blk.%d.ffn_gate.weight", {dim, hidden}, true},
      {"blk.%d.ffn_down.weight", {hidden, dim}, true},
      {"blk.%d.ffn_up.weight", {dim, hidden}, true},
      {"output_norm.weight", {dim}, false},
      {"", {freq}, false},  // freq_cis_real (unused: RoPE is computed)
      {"", {freq}, false},  // freq_cis_imag
  };
  if (!h.shared_classifier) order.push_back({"output.weight", {dim, vocab}, false});

  int64_t total = 0;
  for (const Piece& piece : order) {
    int64_t n = 1;
    for (int64_t d : piece.shape) n *= d;
    total += n * (piece.per_layer ? L : 1);
  }
  const uint64_t expected = kHeaderBytes + static_cast<uint64_t>(total) * 4;
  if (file->size() != expected) {
    std::string msg = path + ": llama2.c file size " + std::to_string(file->size()) +
                      " does not match the header (expected " + std::to_string(expected) +
                      " bytes for dim " + std::to_string(dim) + ", " + std::to_string(L) +
                      " layers, vocab " + std::to_string(vocab);
    msg += h.shared_classifier ? ", shared classifier)" : ", separate classifier)";
    throw Error(msg);
  }

  size_t pos = kHeaderBytes;
  for (const Piece& piece : order) {
    int64_t n = 1;
    for (int64_t d : piece.shape) n *= d;
    const size_t bytes = static_cast<size_t>(n) * 4;
    const int64_t copies = piece.per_layer ? L : 1;
    for (int64_t l = 0; l < copies; ++l) {
      if (!piece.name.empty()) {
        std::string name = piece.name;
        if (piece.per_layer) name.replace(name.find("%d"), 2, std::to_string(l));
        TensorView t;
        t.name = name;
        t.type = DType::F32;
        t.shape = piece.shape;
        t.data = file->data() + pos;
        t.nbytes = bytes;
        m.tensors.emplace(name, std::move(t));
      }
      pos += bytes;
    }
  }
  m.mappings.push_back(std::move(file));
  check_tensor_shapes(m, path);
  return m;
}

}  // namespace nucleus
