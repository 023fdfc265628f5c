#pragma once
// Tensor element types and a typed, non-owning view of tensor bytes as a model
// file stores them. Shapes use ggml's order: shape[0] is the length of a row
// (the contiguous dimension), shape[1] the number of rows.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nucleus {

// Values are ggml's type ids so GGUF files map directly.
enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  IQ4_NL = 20,
  IQ4_XS = 23,
  BF16 = 30,
};

// True for every block-quantized type (all but F32/F16/BF16).
bool is_block_quantized(DType t);

// Elements per block and bytes per block (ggml block layouts: Q8_0 is an f16
// scale and 32 int8; Q4_0 an f16 scale and 16 bytes of nibbles; the K-quants
// and IQ4_XS 256-element super-blocks, see kernels/kquant.h).
struct DTypeInfo {
  const char* name;
  int64_t block_elems;
  int64_t block_bytes;
};

// Returns nullptr for a type id nucleus does not support.
const DTypeInfo* dtype_info(uint32_t ggml_type);
inline const DTypeInfo& dtype_info(DType t) {
  return *dtype_info(static_cast<uint32_t>(t));
}
const char* dtype_name(DType t);
// Parses a type name as dtype_name gives it ("f32", "q4_k", "iq4_xs", ...;
// case-insensitive); throws Error otherwise.
DType parse_dtype(const std::string& name);

// Bytes of a row of n elements; n must be a multiple of the block size.
size_t row_bytes(DType t, int64_t n);

struct TensorView {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> shape;  // ggml order, shape[0] contiguous
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
  int64_t rows() const { return numel() / (shape.empty() ? 1 : shape[0]); }
  int64_t cols() const { return shape.empty() ? 1 : shape[0]; }
  std::string shape_str() const;
};

}  // namespace nucleus
