#pragma once
// Counter-based N(0, 1) samples for synthetic weights: sample i of a stream
// is a pure function of (seed, stream, i), so tensors can be generated in any
// order, on any number of threads, with identical results. Box-Muller on two
// 32-bit hashes of the pair index, with polynomial log/sin/cos evaluated the
// same way (explicit FMAs) in the scalar and the 8-wide AVX2 code, so both
// give bit-identical samples.
#include <cstdint>

namespace nucleus {

struct NormalStream {
  uint32_t k0 = 0, k1 = 0;
};

NormalStream normal_stream(uint64_t seed, uint64_t stream);

// dst[i] = scale * sample (first + i) of the stream, for i in [0, n).
// Sample indices must stay below 2^33 (2^32 pairs).
void normal_fill(const NormalStream& s, uint64_t first, int64_t n, float scale, float* dst);

// One sample, computed by the scalar path.
float random_normal(uint64_t seed, uint64_t stream, uint64_t index);

}  // namespace nucleus
