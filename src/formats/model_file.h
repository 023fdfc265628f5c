#pragma once
// A loaded model file: its configuration, named tensors (views into mapped or
// owned memory) and, when the file has one, its vocabulary. Every reader
// (GGUF, llama2.c, safetensors) produces this one type.
//
// Tensor names follow GGUF/llama.cpp: token_embd.weight, output_norm.weight,
// output.weight (absent when tied), blk.N.{attn_norm, attn_q, attn_k, attn_v,
// attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight, and .bias
// variants where a model has biases.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/tensor.h"
#include "model/config.h"
#include "tokenizer/vocab.h"
#include "util/mapped_file.h"

namespace nucleus {

struct ModelFile {
  ModelConfig config;
  std::map<std::string, TensorView> tensors;
  Vocab vocab;  // empty() when the file carries no tokenizer
  // Metadata as text for `nucleus info` (key -> printable value).
  std::vector<std::pair<std::string, std::string>> metadata;
  // Keep-alive for the memory the views point into.
  std::vector<std::shared_ptr<MappedFile>> mappings;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> owned;

  const TensorView* find(const std::string& name) const;
  // Throws Error naming the tensor when absent.
  const TensorView& get(const std::string& name) const;
  // Drops a tensor's mapped pages from memory once it has been copied
  // elsewhere (no effect on owned memory). The view stays valid.
  void release_pages(const uint8_t* p, size_t n) const;
  // True when [p, p + n) lies in one of the file mappings (not owned memory).
  bool mapped(const uint8_t* p, size_t n) const;
};

struct LoadOptions {
  std::string tokenizer_path;  // llama2.c: tokenizer.bin; empty = beside the model
  // Read only the vocabulary (and metadata): config and tensors stay empty and
  // are not validated, so vocab-only GGUFs load. For llama2.c the model header
  // is still read for the vocabulary size.
  bool vocab_only = false;
};

// Checks that every tensor a LLaMA-family model needs is present with the
// shape the config implies (ggml order): token_embd [dim, vocab], attn_q
// [dim, q_dim], attn_k/v [dim, kv_dim], attn_output [q_dim, dim], ffn_gate/up
// [dim, ffn], ffn_down [ffn, dim], norms [dim], output [dim, vocab] unless
// tied, and biases [out] when present. Throws Error("<source>: missing tensor
// ..." / "<source>: inconsistent shapes: ...") naming the tensor.
void check_tensor_shapes(const ModelFile& model, const std::string& source);

// Chooses the reader from the path: a directory (HF checkpoint), *.gguf or
// GGUF magic, otherwise llama2.c .bin. Throws Error with a one-line reason.
ModelFile load_model_file(const std::string& path, const LoadOptions& options = {});

}  // namespace nucleus
