#pragma once
// Row math shared by the processors and the strategies, written to reproduce
// PyTorch's float32 CPU arithmetic (HF generate runs there): softmax subtracts
// the row max, exponentiates in float, sums, then multiplies by the float
// reciprocal of the sum.
#include <cstdint>
#include <span>
#include <vector>

namespace nucleus::sampling {

// The span forms write into caller memory and never allocate (out may alias
// x); the forms returning a vector are for one-off use.

// out[i] = exp(x[i] - max) * (1 / sum). An all -inf row gives all zeros
// (there is nothing left to normalise; callers decide whether that is an error).
void softmax(std::span<const float> x, std::span<float> out);
std::vector<float> softmax(std::span<const float> x);

// out[i] = x[i] - max - log(sum exp(x - max)); what beam search scores with.
void log_softmax(std::span<const float> x, std::span<float> out);
std::vector<float> log_softmax(std::span<const float> x);

// Inclusive prefix sum accumulated in double and stored as float after each
// element: what torch.cumsum does for float32 on CPU (its accumulator type is double).
void cumsum(std::span<const float> x, std::span<float> out);

// Indices 0..n-1 sorted ascending by x[i] (stable: equal values keep id order;
// NaN last). The span form fills idx (idx.size() == x.size()) without
// allocating.
void argsort_ascending(std::span<const float> x, std::span<int32_t> idx);
std::vector<int32_t> argsort_ascending(std::span<const float> x);

// Largest finite-or-inf value at rank k (1-based) from the top, i.e. the value
// torch.topk(x, k)[0][-1] returns. Requires 1 <= k <= x.size(). NaN counts as
// -inf. The form with work reuses it as working memory (allocation-free once
// it has grown to min(k, 256) or x.size() elements).
float kth_largest(std::span<const float> x, int64_t k, std::vector<float>& work);
float kth_largest(std::span<const float> x, int64_t k);

// Number of entries that are not -inf (NaN counts as removed).
int64_t count_survivors(std::span<const float> x);

}  // namespace nucleus::sampling
