#include "formats/quant_recipe.h"

#include <algorithm>
#include <cctype>

#include "formats/gguf.h"
#include "formats/gguf_convert.h"
#include "util/error.h"

namespace nucleus {
namespace {

bool use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// Layer index of "blk.<i>.<rest>", or -1.
int64_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int64_t i = 0;
  size_t p = 4;
  if (p >= name.size() || !std::isdigit(static_cast<unsigned char>(name[p]))) return -1;
  while (p < name.size() && std::isdigit(static_cast<unsigned char>(name[p])))
    i = i * 10 + (name[p++] - '0');
  return i;
}

DType fallback(DType t, int64_t cols) {
  if (cols % dtype_info(t).block_elems == 0) return t;
  switch (t) {
    case DType::Q4_K:
      return DType::Q5_0;
    case DType::Q5_K:
      return DType::Q5_1;
    case DType::Q6_K:
      return DType::Q8_0;
    default:
      return t;
  }
}

}  // namespace

QuantRecipe parse_quant_recipe(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  QuantRecipe r;
  r.name = s;
  if (s == "q4_k_m" || s == "q5_k_m") {
    r.base = s == "q4_k_m" ? DType::Q4_K : DType::Q5_K;
    r.mix = QuantRecipe::Mix::kMedium;
    r.file_type = s == "q4_k_m" ? 15 : 17;
    return r;
  }
  if (s == "q4_k_s" || s == "q5_k_s" || s == "q6_k") {
    r.base = s == "q4_k_s" ? DType::Q4_K : s == "q5_k_s" ? DType::Q5_K : DType::Q6_K;
    r.mix = QuantRecipe::Mix::kSmall;
    r.file_type = s == "q4_k_s" ? 14 : s == "q5_k_s" ? 16 : 18;
    return r;
  }
  r.base = parse_dtype(name);
  r.file_type = gguf_file_type(r.base);
  return r;
}

DType recipe_tensor_type(const QuantRecipe& r, const std::string& name, int64_t cols,
                         int64_t n_layers) {
  if (r.mix == QuantRecipe::Mix::kPlain) return r.base;
  DType t = r.base;
  const int64_t i = layer_of(name);
  const bool attn_v = name.ends_with(".attn_v.weight");
  const bool ffn_down = name.ends_with(".ffn_down.weight");
  if (name == "output.weight") {
    t = DType::Q6_K;
  } else if (r.mix == QuantRecipe::Mix::kMedium && i >= 0 && (attn_v || ffn_down)) {
    if (use_more_bits(i, n_layers)) t = DType::Q6_K;
  } else if (r.base == DType::Q4_K && i >= 0) {  // Q4_K_S
    if ((attn_v && i < 4) || (ffn_down && i < n_layers / 8)) t = DType::Q5_K;
  }
  return fallback(t, cols);
}

void quantize_gguf(const std::string& in_path, const std::string& out_path,
                   const QuantRecipe& recipe, int threads) {
  GgufConvertOptions opt;
  opt.type = recipe.base;
  opt.threads = threads;
  opt.file_type = recipe.file_type;
  int64_t n_layers = 0;
  {
    const GgufFile in(in_path);
    for (const GgufTensorInfo& t : in.tensor_infos()) {
      const int64_t i = layer_of(t.name);
      n_layers = std::max(n_layers, i + 1);
    }
  }
  opt.matrix_type = [recipe, n_layers](const TensorView& v) {
    // A row length that no block of the chosen type fits gets
    // gguf_output_type's fallback (the source's float type, or F32).
    return gguf_output_type(v, recipe_tensor_type(recipe, v.name, v.cols(), n_layers));
  };
  requantize_gguf(in_path, out_path, opt);
}

}  // namespace nucleus
