#pragma once
// Byte-level and SentencePiece-style BPE tokenizers as Hugging Face describes
// them (tokenizer.json), as GPT-2 ships them (encoder.json + vocab.bpe) and
// as GGUF carries them (tokenizer.ggml.model = "gpt2").
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace nucleus {

// `path` is a tokenizer.json file or a directory holding tokenizer.json (with
// an optional tokenizer_config.json beside it) or GPT-2's encoder.json and
// vocab.bpe. Throws Error naming the file and field of anything unsupported.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path);

// The same from text already in memory; `config_json` may be empty. `name`
// is used in error messages.
std::unique_ptr<Tokenizer> parse_hf_tokenizer(const std::string& tokenizer_json,
                                              const std::string& config_json,
                                              const std::string& name = "tokenizer.json");

// GPT-2's encoder.json (token -> id) and vocab.bpe (merges) texts.
std::unique_ptr<Tokenizer> parse_gpt2_tokenizer(const std::string& encoder_json,
                                                const std::string& vocab_bpe);

// A byte-level BPE tokenizer from a GGUF vocabulary (model "gpt2"); the
// pre-tokenizer regex follows tokenizer.ggml.pre: "llama-bpe"/"llama3"
// (Llama 3), "qwen2" (Qwen2, with NFC), "gpt-2"/"default"/"" (GPT-2).
std::unique_ptr<Tokenizer> make_bpe_tokenizer_from_vocab(const Vocab& vocab);

}  // namespace nucleus
