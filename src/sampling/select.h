#pragma once
// Token choice from a processed logits row, and the counter-based RNG behind it.
//
// The draw (reproducible by any implementation):
//   mix(z):  z += 0x9E3779B97F4A7C15;
//            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
//            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//            return z ^ (z >> 31);                 (SplitMix64 finaliser, mod 2^64)
//   h = mix(mix(mix(seed) ^ sequence_index) ^ step)
//   u = (h >> 11) * 2^-53                          (uniform double in [0, 1))
//   p = softmax(logits) in float32 (see math.h)
//   target = u * sum_i p[i]   (sum in double, id order)
//   token  = the smallest id i with p[i] > 0 and c[i] > target, where
//            c[i] = p[0] + ... + p[i] accumulated in double in id order;
//            if rounding leaves none, the largest id with p[i] > 0.
// The key is the triple, never a shared stream, so a sequence's tokens depend
// only on its own (seed, index, step): not on thread count, batch composition
// or other sequences.
#include <cstdint>
#include <span>

namespace nucleus::sampling {

uint64_t splitmix64_mix(uint64_t z);
// Hash of (seed, sequence index, step) as above.
uint64_t rng_key(uint64_t seed, uint64_t sequence_index, uint64_t step);
// Uniform double in [0, 1) for the triple.
double uniform(uint64_t seed, uint64_t sequence_index, uint64_t step);

// Argmax over the row; the lowest id wins ties; NaN never wins. Throws
// nucleus::Error when every logit is -inf or NaN.
int32_t greedy(std::span<const float> logits);

// Inverse-CDF choice over probabilities in id order for a given u in [0, 1).
// Throws when no probability is positive.
int32_t sample_from_probs(std::span<const float> probs, double u);

// softmax(logits) then sample_from_probs with uniform(seed, sequence_index, step).
// The form with probs writes the softmax there (probs.size() == logits.size())
// and allocates nothing; the other allocates it per call.
int32_t sample(std::span<const float> logits, std::span<float> probs, uint64_t seed,
               uint64_t sequence_index, uint64_t step);
int32_t sample(std::span<const float> logits, uint64_t seed, uint64_t sequence_index,
               uint64_t step);

}  // namespace nucleus::sampling
