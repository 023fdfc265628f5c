#include "formats/tensor.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"

namespace nucleus {

const DTypeInfo* dtype_info(uint32_t ggml_type) {
  static constexpr DTypeInfo kF32{"f32", 1, 4};
  static constexpr DTypeInfo kF16{"f16", 1, 2};
  static constexpr DTypeInfo kBF16{"bf16", 1, 2};
  static constexpr DTypeInfo kQ8_0{"q8_0", 32, 34};
  static constexpr DTypeInfo kQ4_0{"q4_0", 32, 18};
  switch (ggml_type) {
    case 0:
      return &kF32;
    case 1:
      return &kF16;
    case 2:
      return &kQ4_0;
    case 8:
      return &kQ8_0;
    case 30:
      return &kBF16;
    default:
      return nullptr;
  }
}

const char* dtype_name(DType t) {
  return dtype_info(t).name;
}

DType parse_dtype(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "f32") return DType::F32;
  if (s == "f16") return DType::F16;
  if (s == "bf16") return DType::BF16;
  if (s == "q8_0") return DType::Q8_0;
  if (s == "q4_0") return DType::Q4_0;
  throw Error("unknown tensor type '" + name + "' (expected f32, f16, bf16, q8_0 or q4_0)");
}

size_t row_bytes(DType t, int64_t n) {
  const DTypeInfo& info = dtype_info(t);
  return static_cast<size_t>(n / info.block_elems * info.block_bytes);
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace nucleus
