#pragma once
// Internal to src/kernels/: what each instruction-set file provides to the
// matmul driver in matmul.cpp. Not for use outside kernels/.
//
// The per-element reduction that every path (and every ISA) performs, so that
// results depend only on `cols`:
//  * float weights (F32/F16/BF16): 16 lane sums; lane j accumulates
//    w[i]*x[i] for i = j, j+16, j+32, ... in order with one fused multiply-add
//    each; the last partial chunk is zero-padded. Quantized weights
//    (Q8_0/Q4_0): lane j (0..7) accumulates, over the even-numbered 32-blocks
//    in order, fma(float(sum of the 4 int8 products in bytes 4j..4j+3),
//    dw*dx, lane); lanes 8..15 do the same over the odd-numbered blocks.
//  * then a fixed tree: s[j] = l[j] + l[j+8] (8 lanes), s[j] + s[j+4],
//    s[j] + s[j+2], s[0] + s[1].
// AVX2 holds the 16 lanes in two 8-wide registers, AVX-512 in one, so the two
// ISAs produce bit-identical results (the tests check this too).
#include <cstddef>
#include <cstdint>

#include "kernels/matmul.h"

namespace nucleus::kernels::detail {

struct MatmulArgs {
  const Matrix* w = nullptr;
  size_t w_stride = 0;           // bytes per weight row
  const float* x = nullptr;      // n × cols
  const uint8_t* act = nullptr;  // quantized activations (quantized types only)
  size_t act_stride = 0;         // bytes per activation row in act
  int64_t n = 0;
  float* y = nullptr;  // n × rows
};

// Quantized activation row layout (both ISAs): nbp = nb rounded up to even;
// nbp*32 int8 values; nbp*8 floats, each block's dequantized f16 scale
// repeated 8 times; nbp*8 int32, for each group of 4 values -start_scale
// times their sum (AVX-512 feeds weights to vpdpbusd as unsigned w + offset
// and starts each lane from -offset·Σx to leave exactly Σ w·x; AVX2 passes
// start_scale 0 and ignores them). A padding block is all zero.
inline int64_t act_blocks_padded(int64_t cols) {
  return ((cols / 32) + 1) & ~int64_t{1};
}
inline size_t act_row_bytes(int64_t cols) {
  return static_cast<size_t>(act_blocks_padded(cols)) * 96;
}

// Quantizes one activation row to the layout above, bit-identical to
// quantize_row(DType::Q8_0, ...) in values and scales.
void quantize_activation_row(const float* x, int64_t cols, uint8_t* out, int start_scale);

// Computes y for weight rows [o0, o1) and every activation row.
void matmul_rows_avx2(const MatmulArgs& a, int64_t o0, int64_t o1);
void matmul_rows_avx512(const MatmulArgs& a, int64_t o0, int64_t o1);
// The float-weight (F32/F16/BF16) part of matmul_rows_avx512
// (matmul_float_avx512.cpp).
void matmul_float_rows_avx512(const MatmulArgs& a, int64_t o0, int64_t o1);

}  // namespace nucleus::kernels::detail
