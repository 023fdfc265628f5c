#pragma once
// llama2.c checkpoints (legacy v0 `.bin`: a 7-int32 header then F32 weights in
// run.c's order) and llama2.c `tokenizer.bin` vocabularies.
#include <cstdint>
#include <string>

#include "formats/model_file.h"
#include "tokenizer/vocab.h"

namespace nucleus {

// Reads the model; weights become views into the mapping under GGUF tensor
// names (w1 = ffn_gate, w2 = ffn_down, w3 = ffn_up) with ggml-order shapes.
// `tokenizer_path` empty = no vocabulary (ids-only use); otherwise it must
// be a readable llama2.c tokenizer.bin for this model's vocabulary size.
// With vocab_only, only the header is checked and no tensors are attached.
ModelFile read_llama2c(const std::string& path, const std::string& tokenizer_path,
                       bool vocab_only = false);

// Reads a llama2.c tokenizer.bin holding `vocab_size` tokens (vocab_size <= 0:
// as many as the file holds). Token text is converted to SentencePiece form
// (' ' -> U+2581, "\n<s>\n" -> "<s>", "\n</s>\n" -> "</s>") so it equals the
// GGUF vocabulary of the same model. Model "llama", unk 0, bos 1, eos 2,
// add_bos; types: <0xXX> Byte, ids 0..2 Unknown/Control/Control, others Normal.
Vocab read_llama2c_vocab(const std::string& path, int64_t vocab_size);

}  // namespace nucleus
