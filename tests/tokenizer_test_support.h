#pragma once
// Test-only helpers for the tokenizer tests: a reader for llama2.c
// tokenizer.bin, a minimal reader for the tokenizer.ggml.* keys of vocab-only
// GGUF files (so these tests do not depend on src/formats/), and the llama.cpp
// test-vector format (.inp strings separated by "\n__ggml_vocab_test__\n",
// .out one line of space-separated ids per string).
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tokenizer/vocab.h"

namespace nucleus::test {

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class ByteReader {
 public:
  explicit ByteReader(const std::string& data) : d_(data.begin(), data.end()) {}
  bool done() const { return pos_ == d_.size(); }
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, d_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string bytes(uint64_t n) {
    need(n);
    std::string s(d_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  void skip(uint64_t n) {
    need(n);
    pos_ += n;
  }

 private:
  void need(uint64_t n) const {
    if (n > d_.size() - pos_) throw std::runtime_error("truncated fixture");
  }
  std::vector<char> d_;  // not std::string: GCC 12 warns falsely on its SSO buffer
  size_t pos_ = 0;
};

// llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score,
// int32 length, bytes. Ids 0/1/2 are <unk>/<s>/</s> in every llama2.c vocab.
inline Vocab read_tokenizer_bin(const std::string& path) {
  ByteReader r(read_file(path));
  r.get<int32_t>();
  Vocab v;
  v.model = "llama";
  while (!r.done()) {
    v.scores.push_back(r.get<float>());
    const auto len = r.get<int32_t>();
    if (len < 0) throw std::runtime_error("negative token length in " + path);
    v.tokens.push_back(r.bytes(static_cast<uint64_t>(len)));
  }
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  return v;
}

// Only the tokenizer.ggml.* keys of a GGUF v2/v3 file.
inline Vocab read_gguf_vocab_for_test(const std::string& path) {
  ByteReader r(read_file(path));
  if (r.get<uint32_t>() != 0x46554747u) throw std::runtime_error("not GGUF: " + path);
  r.get<uint32_t>();
  r.get<uint64_t>();  // tensor count
  const auto n_kv = r.get<uint64_t>();
  Vocab v;
  const auto str = [&] { return r.bytes(r.get<uint64_t>()); };
  const auto scalar_size = [](uint32_t t) -> uint64_t {
    switch (t) {
      case 0:
      case 1:
      case 7:
        return 1;
      case 2:
      case 3:
        return 2;
      case 4:
      case 5:
      case 6:
        return 4;
      case 10:
      case 11:
      case 12:
        return 8;
      default:
        throw std::runtime_error("bad GGUF type");
    }
  };
  const auto get_int = [&](uint32_t t) -> int64_t {
    switch (t) {
      case 0:
        return r.get<uint8_t>();
      case 1:
        return r.get<int8_t>();
      case 2:
        return r.get<uint16_t>();
      case 3:
        return r.get<int16_t>();
      case 4:
        return r.get<uint32_t>();
      case 5:
        return r.get<int32_t>();
      case 7:
        return r.get<uint8_t>();
      case 10:
        return static_cast<int64_t>(r.get<uint64_t>());
      case 11:
        return r.get<int64_t>();
      default:
        throw std::runtime_error("not an integer GGUF type");
    }
  };
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string key = str();
    const auto type = r.get<uint32_t>();
    if (type == 9) {
      const auto et = r.get<uint32_t>();
      const auto n = r.get<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) {
        if (key == "tokenizer.ggml.tokens" && et == 8) {
          v.tokens.push_back(str());
        } else if (key == "tokenizer.ggml.scores" && et == 6) {
          v.scores.push_back(r.get<float>());
        } else if (key == "tokenizer.ggml.token_type") {
          v.types.push_back(static_cast<TokenType>(get_int(et)));
        } else if (et == 8) {
          str();
        } else {
          r.skip(scalar_size(et));
        }
      }
    } else if (type == 8) {
      const std::string s = str();
      if (key == "tokenizer.ggml.model") v.model = s;
      if (key == "tokenizer.ggml.pre") v.pre = s;
    } else if (type == 6 || type == 12) {
      r.skip(scalar_size(type));
    } else {
      const int64_t x = get_int(type);
      if (key == "tokenizer.ggml.bos_token_id") v.bos_id = static_cast<int32_t>(x);
      if (key == "tokenizer.ggml.eos_token_id") v.eos_id = static_cast<int32_t>(x);
      if (key == "tokenizer.ggml.unknown_token_id") v.unk_id = static_cast<int32_t>(x);
      if (key == "tokenizer.ggml.padding_token_id") v.pad_id = static_cast<int32_t>(x);
      if (key == "tokenizer.ggml.add_bos_token") v.add_bos = x != 0;
      if (key == "tokenizer.ggml.add_eos_token") v.add_eos = x != 0;
      if (key == "tokenizer.ggml.add_space_prefix") v.add_space_prefix = x != 0;
    }
  }
  return v;
}

struct VectorCase {
  std::string text;
  std::vector<int32_t> ids;
};

inline std::vector<VectorCase> read_vectors(const std::string& inp_path,
                                            const std::string& out_path) {
  const std::string inp = read_file(inp_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  for (;;) {
    const size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) {
      // The file ends with a separator; anything after it would be one more case.
      if (pos < inp.size()) texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  std::istringstream out(read_file(out_path));
  std::vector<VectorCase> cases;
  std::string line;
  for (const std::string& t : texts) {
    if (!std::getline(out, line)) throw std::runtime_error("fewer .out lines than .inp cases");
    std::istringstream ls(line);
    VectorCase c{t, {}};
    int32_t id;
    while (ls >> id) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace nucleus::test
