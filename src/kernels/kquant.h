#pragma once
// ggml's K-quant, i-quant and legacy block types beyond Q8_0/Q4_0: Q4_1,
// Q5_0, Q5_1, IQ4_NL (32-element blocks) and Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_XS (256-element super-blocks). Block layouts as ggml/GGUF store them
// (little-endian, f16 scales):
//   Q4_1  20 B: d, m, qs[16]                       w = d·q + m, q 4-bit
//   Q5_0  22 B: d, qh[4], qs[16]                   w = d·(q − 16), q 5-bit
//   Q5_1  24 B: d, m, qh[4], qs[16]                w = d·q + m
//   IQ4_NL 18 B: d, qs[16]                         w = d·kv[q] (16-entry table)
//   Q2_K  84 B: scales[16], qs[64], d, dmin        w = d·sc·q − dmin·m, 16 subs of 16
//   Q3_K 110 B: hmask[32], qs[64], scales[12], d   w = d·(sc − 32)·(q − 4), 16 subs of 16
//   Q4_K 144 B: d, dmin, scales[12], qs[128]       w = d·sc·q − dmin·m, 8 subs of 32
//   Q5_K 176 B: d, dmin, scales[12], qh[32], qs[128]
//   Q6_K 210 B: ql[128], qh[64], scales[16] (int8), d   w = d·sc·(q − 32)
//   IQ4_XS 136 B: d, scales_h (u16), scales_l[4], qs[128]  w = d·(ls − 32)·kv[q]
// Dequantization follows gguf-py's float32 operation order exactly (products
// rounded separately, no fused multiply-add), so it is bit-identical to it.
//
// For matrix products every block is turned into the integer form below:
// unsigned stored values u (q plus a per-type offset so that they are
// non-negative), integer sub-block scales and mins, float super-scales.
// The weight value is then d·sc·(u − offset) − dmin·mn (K types), or
// d_b·(u − offset) + m_b (32-element legacy types).
#include <cstddef>
#include <cstdint>

#include "formats/tensor.h"

namespace nucleus::kernels {

constexpr int kSuperBlock = 256;

// The IQ4_NL / IQ4_XS non-linear 4-bit value table.
extern const int8_t kIq4Values[16];

// True for the types this file implements.
bool is_kquant(DType t);
// True for the types whose blocks are 256-element super-blocks.
bool is_super_block_type(DType t);
// True when quantize_row_kquant can write t.
bool kquant_can_quantize(DType t);

// n a multiple of the block size (checked by the caller, dtype.cpp).
void dequantize_row_kquant(DType t, const void* src, float* dst, int64_t n);
// Throws Error for types without a quantizer (Q2_K, Q3_K, IQ4_NL, IQ4_XS).
void quantize_row_kquant(DType t, const float* src, void* dst, int64_t n);

// Checks every f16 scale of a row of blocks; returns false when one is NaN
// or infinite (the loader turns that into an error naming the tensor).
bool kquant_scales_finite(DType t, const void* src, int64_t n);

// Integer form of 256 weights: one super-block, or up to 8 legacy blocks.
struct IntBlock {
  alignas(64) uint8_t u[kSuperBlock];
  int16_t sc[16];  // per 16 elements (K types; a 32-element scale is repeated)
  int16_t mn[16];  // per 16 elements; zero for types without mins
  float d[8];      // K types: d[0]; legacy: one per 32-block
  float m[8];      // K types: m[0] = dmin; legacy: the added min (Q4_1/Q5_1)
};

struct KquantTraits {
  int act_block;  // activation quantization block: 256 (K types) or 32
  int offset;     // weight value = u − offset
  bool has_min;
  bool table;  // IQ4: u = kv + 128 (so u may exceed 127)
};
KquantTraits kquant_traits(DType t);

// Unpacks the 256 elements starting at element 256·s of a row (K types), or
// blocks [b0, b0 + nb) (nb ≤ 8) of a row of a legacy type into out.
void unpack_super(DType t, const uint8_t* row, int64_t s, IntBlock& out);
void unpack_legacy(DType t, const uint8_t* row, int64_t b0, int nb, IntBlock& out);

}  // namespace nucleus::kernels
