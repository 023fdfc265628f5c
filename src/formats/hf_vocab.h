#pragma once
// The GGUF tokenizer.ggml.* vocabulary of an HF tokenizer.json, for writing
// GGUF files (the tokenizer itself is built elsewhere from the same files).
#include <string>

#include "tokenizer/vocab.h"

namespace nucleus {

// Reads a SentencePiece-BPE tokenizer.json (model type BPE with byte_fallback:
// Llama 1/2, Mistral, TinyLlama, stories260K) into a "llama" vocabulary:
// - tokens in id order (model.vocab plus added_tokens);
// - types: the unk token Unknown, special added tokens Control, other added
//   tokens UserDefined, "<0xHH>" Byte, the rest Normal;
// - scores: 0 for non-Normal tokens; Normal tokens ranked by the first entry
//   of model.merges that produces them (then those no merge produces, in id
//   order), the k-th getting -k, the score SentencePiece's BPE trainer gives
//   its k-th piece. tokenizer.json drops the scores; these make SentencePiece
//   merging pick the pairs the merge list picks (Llama 2's whitespace runs,
//   scored -1e9 in tokenizer.model, merge last), and reproduce llama.cpp's
//   conversion of the original tokenizer.model exactly where the model used
//   trained pieces only (stories260K).
// tokenizer_config_path (may be empty) supplies bos/eos/unk tokens,
// add_bos_token / add_eos_token and the chat template. Other tokenizer kinds
// throw Error.
Vocab read_spm_vocab_from_tokenizer_json(const std::string& tokenizer_json_path,
                                         const std::string& tokenizer_config_path);

// Either kind: SentencePiece-BPE as above, or byte-level BPE (GPT-2 style:
// Llama 3, Qwen2) as a "gpt2" vocabulary: tokens, types (special added tokens
// Control, other added tokens UserDefined, the rest Normal), no scores,
// merges as "a b", and tokenizer.ggml.pre guessed from the special tokens
// ("llama-bpe" with <|begin_of_text|>, "qwen2" with <|im_start|>, else
// "default"). BOS is added when tokenizer_config.json says add_bos_token or,
// absent that, when the post-processor template starts with a special token.
Vocab read_vocab_from_tokenizer_json(const std::string& tokenizer_json_path,
                                     const std::string& tokenizer_config_path);

}  // namespace nucleus
