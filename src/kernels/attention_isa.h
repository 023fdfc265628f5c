#pragma once
// The ISA-specific pieces of attention.cpp (internal to src/kernels).
#include <cstdint>

namespace nucleus::kernels::detail {

// out[0, hd) = out·correction + Σ_j probs[j]·v[j][0, hd), hd a multiple of
// 16: bit-identical to the AVX2 accumulation in attention.cpp.
void accumulate_values_avx512(float* out, const float* probs, const float* const* v, int64_t hd,
                              int64_t n, float correction);

}  // namespace nucleus::kernels::detail
