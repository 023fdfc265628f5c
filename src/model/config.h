#pragma once
// One description of a LLaMA-family model, whatever file it came from.
#include <cstdint>
#include <string>
#include <vector>

namespace nucleus {

// How Q/K rows pair up for rotary embedding. GGUF and llama2.c keep Meta's
// interleaved pairs (x[2i], x[2i+1]); HF checkpoints permute the rows so pairs
// are (x[i], x[i + head_dim/2]) ("rotate_half").
enum class RopeLayout { Interleaved, Half };

struct RopeScaling {
  enum class Kind { None, Linear, Llama3 } kind = Kind::None;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position = 8192;
  // llama.cpp's rope_freqs.weight (GGUF): per-frequency divisors applied to
  // theta^(-2i/d) on top of `kind` (how converters store Llama 3.1 scaling).
  std::vector<float> freq_factors;
};

struct ModelConfig {
  std::string arch = "llama";
  std::string format;  // "gguf", "llama2c", "safetensors"
  int64_t dim = 0;     // embedding (hidden) size
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;  // usually dim / n_heads
  int64_t ffn_dim = 0;   // SwiGLU hidden size
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  float rope_theta = 10000.0f;
  float rms_eps = 1e-5f;
  RopeLayout rope_layout = RopeLayout::Interleaved;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;  // lm_head reads token_embd
  bool attn_bias = false;        // q/k/v biases (Qwen2)
  bool qk_norm = false;          // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool mlp_bias = false;
  // Token ids the checkpoint's config names (HF config.json bos_token_id /
  // eos_token_id; eos may be a list, e.g. Llama 3 Instruct). -1 / empty = unknown.
  int32_t bos_id = -1;
  std::vector<int32_t> eos_ids;

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // Throws Error naming the first inconsistent field.
  void validate() const;
};

}  // namespace nucleus
