#include "model/config.h"

#include "util/error.h"

namespace nucleus {

void ModelConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    check(v > 0,
          std::string("model config: ") + name + " must be positive, got " + std::to_string(v));
  };
  positive(dim, "embedding size");
  positive(n_layers, "layer count");
  positive(n_heads, "head count");
  positive(n_kv_heads, "KV head count");
  positive(head_dim, "head size");
  positive(ffn_dim, "feed-forward size");
  positive(vocab_size, "vocabulary size");
  positive(context_length, "context length");
  check(n_heads % n_kv_heads == 0, "model config: head count " + std::to_string(n_heads) +
                                       " is not a multiple of KV head count " +
                                       std::to_string(n_kv_heads));
  check(head_dim % 2 == 0,
        "model config: head size must be even for RoPE, got " + std::to_string(head_dim));
  check(rms_eps > 0, "model config: RMS norm epsilon must be positive");
  check(rope_theta > 0, "model config: rope base must be positive");
  // Keep sizes far from overflow of 64-bit byte counts.
  check(dim < (1 << 20) && ffn_dim < (1 << 22) && vocab_size < (1 << 24) && n_layers < 4096 &&
            context_length <= (1 << 22),
        "model config: implausibly large dimensions");
}

}  // namespace nucleus
