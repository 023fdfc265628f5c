#pragma once
// `nucleus quantize` type recipes. A plain type name puts every 2-D weight in
// that type. The llama.cpp file types Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M and Q6_K
// follow llama.cpp's llama_tensor_get_type (no importance matrix, LLaMA
// architecture, as the llama-quantize files in tests/data/kquant show):
//  * output.weight → Q6_K; token_embd.weight → the base type;
//  * Q4_K_M / Q5_K_M: attn_v and ffn_down of layer i → Q6_K when
//    use_more_bits(i, n) (i < n/8, i ≥ 7n/8, or (i − n/8) mod 3 = 2);
//  * Q4_K_S: attn_v of layers 0–3 → Q5_K, ffn_down of layers i < n/8 → Q5_K;
//  * Q5_K_S, Q6_K: the base type elsewhere.
// A K type on a row length that is not a multiple of 256 falls back as
// llama.cpp does: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0.
#include <cstdint>
#include <string>

#include "formats/tensor.h"

namespace nucleus {

struct QuantRecipe {
  enum class Mix { kPlain, kSmall, kMedium };
  std::string name;
  DType base = DType::F32;
  Mix mix = Mix::kPlain;
  uint32_t file_type = 0;  // llama.cpp's general.file_type (llama_ftype)
};

// "q4_k_m", "q5_k_m", "q4_k_s", "q5_k_s", "q6_k" or any type name parse_dtype
// accepts (case-insensitive); throws Error otherwise.
QuantRecipe parse_quant_recipe(const std::string& name);

// The type of the 2-D tensor `name` with rows of `cols` elements in a model
// of n_layers layers.
DType recipe_tensor_type(const QuantRecipe& r, const std::string& name, int64_t cols,
                         int64_t n_layers);

// `nucleus quantize IN OUT RECIPE`: requantize_gguf with each 2-D tensor's
// type from the recipe (the layer count from the blk.<i> tensor names).
void quantize_gguf(const std::string& in_path, const std::string& out_path,
                   const QuantRecipe& recipe, int threads);

}  // namespace nucleus
