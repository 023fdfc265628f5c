#pragma once
// Model -> GGUF conversion (`nucleus convert`, `nucleus quantize`) and
// synthetic random models for benchmarks. Files carry the model's
// general.architecture (llama, mistral, qwen2, qwen3) with llama.cpp's
// metadata keys and tensor names, Q/K rows in the order llama.cpp's rope type
// for that architecture expects, and tensors streamed row by row.
#include <cstdint>
#include <functional>
#include <string>

#include "formats/gguf_writer.h"
#include "formats/model_file.h"

namespace nucleus {

struct GgufConvertOptions {
  DType type = DType::F32;  // for 2-D weight matrices; 1-D tensors are always F32
  std::string name;         // general.name; empty = the architecture
  int threads = 1;          // 0 = hardware threads
  // requantize_gguf only: when set, the type of each 2-D tensor (instead of
  // gguf_output_type(tensor, type)), and general.file_type when ≥ 0.
  std::function<DType(const TensorView&)> matrix_type;
  int64_t file_type = -1;
};

// llama.cpp's general.file_type (llama_ftype) for an all-`t` model.
uint32_t gguf_file_type(DType t);

// The type a tensor is written in when `requested` is asked for: F32 for 1-D
// tensors; `requested` for 2-D ones whose rows fit its blocks; otherwise the
// source's own type when that is a float type (exact), else F32.
DType gguf_output_type(const TensorView& source, DType requested);

// Writes any loaded model as GGUF. When config.rope_layout is Half (HF) and
// the architecture's GGUF layout is interleaved (llama, mistral: see
// gguf_rope_layout), the rows of attn_q/attn_k (and their biases) are
// permuted back to interleaved pairs: within each head, rows i and
// i + head_dim/2 become rows 2i and 2i+1. qwen2/qwen3 rows are kept.
// Tensors whose type does not change and need no permutation are copied
// byte for byte. A tied model gets no output.weight (llama.cpp's convention).
// model.vocab is written when not empty, padded with "[PAD<id>]" tokens to
// config.vocab_size; its bos/eos fall back to config.bos_id / eos_ids[0].
// Llama 3 rope scaling becomes llama.cpp's rope_freqs.weight tensor.
void write_gguf(const ModelFile& model, const std::string& out_path,
                const GgufConvertOptions& options);

// `nucleus quantize`: rewrites a GGUF file with its quantizable tensors in
// `options.type` (dequantize, then quantize_row; see gguf_output_type). All
// metadata is copied unchanged except general.file_type; tensor order and
// names are kept.
void requantize_gguf(const std::string& in_path, const std::string& out_path,
                     const GgufConvertOptions& options);

struct RandomModelSpec {
  std::string name;
  int64_t dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, ffn_dim = 0;
  int64_t vocab_size = 0, context_length = 0;
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
};

// "tinyllama-1.1b", "llama-7b", "llama3-8b", or explicit
// "dim=D,layers=L,heads=H,kv_heads=K,ffn=F,vocab=V,ctx=C[,rope_theta=T]" where
// only dim is required: see fill_random_spec_defaults.
RandomModelSpec parse_random_spec(const std::string& shape);

// Fills the fields left 0: heads = dim/64 (64-wide heads; fewer for narrow
// models, keeping dim divisible and the head size even), kv_heads = heads,
// ffn = Meta's 2/3·4·dim rounded up to 256, layers 2, vocab 32000, ctx 2048.
// Throws Error when dim is missing.
void fill_random_spec_defaults(RandomModelSpec& spec);

// A placeholder SentencePiece-style vocabulary of n tokens: <unk>, <s>, </s>,
// the 256 byte tokens (as many as fit), then "▁tok<id>".
Vocab synthetic_vocab(int64_t n);

// Writes a model of the given shape with N(0, 0.02) weights (norms = 1): the
// tensor number k in file order uses random_normal(seed, k, element index),
// streamed tensor by tensor. vocab may be null (synthetic tokens); a real
// vocabulary larger than spec.vocab_size widens the model to fit it.
void write_random_gguf(const RandomModelSpec& spec, const std::string& out_path,
                       const GgufConvertOptions& options, uint64_t seed, const Vocab* vocab);

}  // namespace nucleus
