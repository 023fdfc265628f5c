#include "formats/tensor.h"

#include <algorithm>
#include <cctype>

#include "util/error.h"

namespace nucleus {

namespace {

struct NamedType {
  DType type;
  DTypeInfo info;
};

// ggml's block sizes (elements, bytes) for each supported type id.
constexpr NamedType kTypes[] = {
    {DType::F32, {"f32", 1, 4}},           {DType::F16, {"f16", 1, 2}},
    {DType::BF16, {"bf16", 1, 2}},         {DType::Q8_0, {"q8_0", 32, 34}},
    {DType::Q4_0, {"q4_0", 32, 18}},       {DType::Q4_1, {"q4_1", 32, 20}},
    {DType::Q5_0, {"q5_0", 32, 22}},       {DType::Q5_1, {"q5_1", 32, 24}},
    {DType::Q2_K, {"q2_k", 256, 84}},      {DType::Q3_K, {"q3_k", 256, 110}},
    {DType::Q4_K, {"q4_k", 256, 144}},     {DType::Q5_K, {"q5_k", 256, 176}},
    {DType::Q6_K, {"q6_k", 256, 210}},     {DType::IQ4_NL, {"iq4_nl", 32, 18}},
    {DType::IQ4_XS, {"iq4_xs", 256, 136}},
};

}  // namespace

const DTypeInfo* dtype_info(uint32_t ggml_type) {
  for (const NamedType& t : kTypes)
    if (static_cast<uint32_t>(t.type) == ggml_type) return &t.info;
  return nullptr;
}

bool is_block_quantized(DType t) {
  return t != DType::F32 && t != DType::F16 && t != DType::BF16;
}

const char* dtype_name(DType t) {
  return dtype_info(t).name;
}

DType parse_dtype(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string all;
  for (const NamedType& t : kTypes) {
    if (s == t.info.name) return t.type;
    all += all.empty() ? "" : ", ";
    all += t.info.name;
  }
  throw Error("unknown tensor type '" + name + "' (expected one of " + all + ")");
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
