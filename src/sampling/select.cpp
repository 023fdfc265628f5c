#include "sampling/select.h"

#include <cmath>
#include <limits>

#include "sampling/math.h"
#include "util/error.h"

namespace nucleus::sampling {

uint64_t splitmix64_mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t rng_key(uint64_t seed, uint64_t sequence_index, uint64_t step) {
  return splitmix64_mix(splitmix64_mix(splitmix64_mix(seed) ^ sequence_index) ^ step);
}

double uniform(uint64_t seed, uint64_t sequence_index, uint64_t step) {
  // The top 53 bits fill a double's mantissa exactly: u is a multiple of 2^-53 below 1.
  return static_cast<double>(rng_key(seed, sequence_index, step) >> 11) * 0x1.0p-53;
}

int32_t greedy(std::span<const float> logits) {
  int32_t best = -1;
  float best_v = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (std::isnan(v) || v == -std::numeric_limits<float>::infinity()) continue;
    if (best < 0 || v > best_v) {
      best = static_cast<int32_t>(i);
      best_v = v;
    }
  }
  if (best < 0)
    throw Error("sampling: greedy: no candidate left (all " + std::to_string(logits.size()) +
                " logits are -inf or NaN)");
  return best;
}

int32_t sample_from_probs(std::span<const float> probs, double u) {
  check(u >= 0.0 && u < 1.0, "sampling: uniform draw outside [0, 1)");
  double total = 0.0;
  int32_t last_positive = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    const float p = probs[i];
    if (p > 0.0f && std::isfinite(p)) {
      total += p;
      last_positive = static_cast<int32_t>(i);
    }
  }
  if (last_positive < 0)
    throw Error("sampling: no candidate left (no positive probability among " +
                std::to_string(probs.size()) + " tokens)");
  const double target = u * total;
  double cum = 0.0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const float p = probs[i];
    if (!(p > 0.0f && std::isfinite(p))) continue;
    cum += p;
    if (cum > target) return static_cast<int32_t>(i);
  }
  return last_positive;
}

int32_t sample(std::span<const float> logits, std::span<float> probs, uint64_t seed,
               uint64_t sequence_index, uint64_t step) {
  softmax(logits, probs);
  return sample_from_probs(probs, uniform(seed, sequence_index, step));
}

int32_t sample(std::span<const float> logits, uint64_t seed, uint64_t sequence_index,
               uint64_t step) {
  std::vector<float> probs(logits.size());
  return sample(logits, probs, seed, sequence_index, step);
}

}  // namespace nucleus::sampling
