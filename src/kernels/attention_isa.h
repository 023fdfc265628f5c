#pragma once
// The ISA-specific pieces of attention.cpp (internal to src/kernels).
#include <cstdint>

#include "kernels/kv_layout.h"

namespace nucleus::kernels::detail {

// 16 consecutive positions of one KV head's transposed keys: dimension d of
// position j at k[d·stride + j] (in a KV block, stride = block_size; in a
// conversion scratch, 16). 64-byte aligned is not required.
struct KeySegment {
  const float* k;
  int64_t stride;
};

// out[g·ldo + 16·s + j] = score of query head g (q + g·hd) against position j
// of segment s: q[0]·k[0], then fma(q[d], k[d], ·) for d = 1 .. hd-1 —
// bit-identical to the AVX2 scores in attention.cpp. out is 64-byte aligned
// and ldo a multiple of 16.
void key_scores_avx512(const float* q, int64_t count, int64_t hd, const KeySegment* seg,
                       int64_t n_seg, float* out, int64_t ldo);

// The F16/Q8_0 conversions of attention.cpp 16 lanes wide (exact, so the
// same values): 16 keys (positions off .. off+15 of one block) of KV head h
// into dst[d·16 + j], and n value rows of KV head h into dst[j·hd + d].
void convert_keys16_avx512(const KvLayout& l, const char* block, int64_t off, int64_t h,
                           float* dst);
void convert_values_avx512(const KvLayout& l, const char* block, int64_t off, int64_t n, int64_t h,
                           float* dst);

// out[0, hd) = out·correction + Σ_j probs[j]·v[j][0, hd), hd a multiple of
// 16: bit-identical to the AVX2 accumulation in attention.cpp.
void accumulate_values_avx512(float* out, const float* probs, const float* const* v, int64_t hd,
                              int64_t n, float correction);

}  // namespace nucleus::kernels::detail
