#pragma once
// Internal to src/kernels/: what each instruction-set file provides to the
// matmul driver in matmul.cpp. Not for use outside kernels/.
//
// The per-element reduction that every path (and every ISA) performs, so that
// results depend only on `cols`:
//  * float weights (F32/F16/BF16): 16 lane sums; lane j accumulates
//    w[i]*x[i] for i = j, j+16, j+32, ... in order with one fused multiply-add
//    each; the last partial chunk is zero-padded. Then a fixed tree:
//    s[j] = l[j] + l[j+8] (8 lanes), s[j] + s[j+4], s[j] + s[j+2], s[0] + s[1].
//    AVX2 holds the 16 lanes in two 8-wide registers, AVX-512 in one.
//  * quantized weights (Q8_0/Q4_0, repacked by quant_pack.h; activations
//    quantized per 32-block to int8 with an f16-rounded scale dx, as Q8_0):
//    for each block b in order, isum = the exact integer Σ qw·qx of the
//    block, then acc = fma(float(isum), dw·dx, acc) starting from acc = 0.
//    Integer sums are exact in any order, so each ISA may form isum its own
//    way; the float steps are the same single chain everywhere. One SIMD lane
//    per output row keeps that chain whole in decode and prefill alike.
// So the two ISAs produce bit-identical results (the tests check this too).
#include <cstddef>
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/quant_pack.h"

namespace nucleus::kernels::detail {

struct MatmulArgs {
  const Matrix* w = nullptr;
  size_t w_stride = 0;              // bytes per weight row (float types)
  const float* x = nullptr;         // n × cols
  const uint8_t* packed = nullptr;  // quantized: quant_pack.h layout
  PackedLayout layout;              // quantized: its geometry
  const uint8_t* act = nullptr;     // quantized activations (quantized types only)
  size_t act_stride = 0;            // bytes per activation row in act
  int64_t n = 0;
  float* y = nullptr;  // n × rows
};

// Quantized activation row layout: nb blocks of 32 int8 values, then nb
// floats (each block's scale, f16-rounded as Q8_0 stores it), then nb int32
// starts: -start_scale × the block's Σ q. AVX-512 feeds weights to vpdpbusd
// (unsigned × signed) offset to unsigned and starts each block's integer sum
// from this value, leaving exactly Σ qw·qx; start_scale is that offset
// (128 for Q8_0, 8 for Q4_0's stored nibbles; AVX2 uses signed Q8_0 weights
// and passes 0).
inline size_t act_row_bytes(int64_t cols) {
  const size_t nb = static_cast<size_t>(cols / 32);
  return (nb * 40 + 63) / 64 * 64;
}

// Quantizes one activation row to the layout above, bit-identical to
// quantize_row(DType::Q8_0, ...) in values and scales.
void quantize_activation_row(const float* x, int64_t cols, uint8_t* out, int start_scale);

// Computes y for weight rows [o0, o1) and every activation row (float types).
void matmul_rows_avx2(const MatmulArgs& a, int64_t o0, int64_t o1);
void matmul_rows_avx512(const MatmulArgs& a, int64_t o0, int64_t o1);
// Quantized types: row groups [g0, g1) of 16 rows (the last may be partial).
void matmul_qgroups_avx2(const MatmulArgs& a, int64_t g0, int64_t g1);
void matmul_qgroups_avx512(const MatmulArgs& a, int64_t g0, int64_t g1);

}  // namespace nucleus::kernels::detail
