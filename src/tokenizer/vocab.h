#pragma once
// A tokenizer vocabulary as model files carry it (GGUF tokenizer.ggml.*,
// llama2.c tokenizer.bin): the raw material the tokenizers are built from.
#include <cstdint>
#include <string>
#include <vector>

namespace nucleus {

// GGUF token types (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct Vocab {
  std::string model = "llama";  // tokenizer.ggml.model: "llama" (SentencePiece BPE), "gpt2", ...
  std::string pre;              // tokenizer.ggml.pre (byte-level BPE pre-tokenizer name)
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty when the file has none
  std::vector<TokenType> types;     // empty when the file has none
  std::vector<std::string> merges;  // byte-level BPE merges "a b"
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;
  // Jinja chat template (GGUF tokenizer.chat_template; "" when absent).
  std::string chat_template;

  bool empty() const { return tokens.empty(); }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

}  // namespace nucleus
