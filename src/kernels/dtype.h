#pragma once
// Conversions between float and the stored element types, bit-exact to ggml's
// definitions: IEEE half (round to nearest even), bfloat16 (upper 16 bits,
// round to nearest even on conversion from float), Q8_0 blocks (f16 scale d =
// max|x|/127, q = round(x/d)) and Q4_0 blocks (f16 scale d = max/-8 where max
// is the signed value of largest magnitude, q = min(15, (int8)(x/d + 8.5))).
#include <cstdint>

#include "formats/tensor.h"

namespace nucleus::kernels {

constexpr int kQBlock = 32;

struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQBlock];
};
struct BlockQ4_0 {
  uint16_t d;               // f16 scale
  uint8_t qs[kQBlock / 2];  // element j in low nibble of byte j, element j+16 in its high nibble
};
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// dst[0..n) = the n elements stored at src in type t (n a multiple of the block size).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Writes row_bytes(t, n) bytes at dst.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace nucleus::kernels
