#include "sampling/math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "util/error.h"

namespace nucleus::sampling {

namespace {

float row_max(std::span<const float> x) {
  float m = -std::numeric_limits<float>::infinity();
  for (float v : x) {
    if (v > m) m = v;
  }
  return m;
}

// Per-token code: the message is built only on failure.
void check_same_size(size_t a, size_t b, const char* what) {
  if (a != b)
    throw Error(std::string("sampling: ") + what + ": output size " + std::to_string(b) +
                " != input size " + std::to_string(a));
}

}  // namespace

void softmax(std::span<const float> x, std::span<float> out) {
  check_same_size(x.size(), out.size(), "softmax");
  const float m = row_max(x);
  if (m == -std::numeric_limits<float>::infinity()) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  // The sum is taken in double: torch's vectorised float reduction is closer to
  // the exact sum than a sequential float loop, and double is closer still.
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    // Removed candidates are exactly 0; skipping exp(-inf) keeps a row that a
    // top_k left with 50 survivors cheap even at a 150k vocabulary.
    const float e = x[i] == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(x[i] - m);
    out[i] = e;
    sum += e;
  }
  const float inv = 1.0f / static_cast<float>(sum);
  for (float& v : out) v *= inv;
}

std::vector<float> softmax(std::span<const float> x) {
  std::vector<float> out(x.size());
  softmax(x, out);
  return out;
}

void log_softmax(std::span<const float> x, std::span<float> out) {
  check_same_size(x.size(), out.size(), "log_softmax");
  const float m = row_max(x);
  if (m == -std::numeric_limits<float>::infinity()) {
    std::fill(out.begin(), out.end(), -std::numeric_limits<float>::infinity());
    return;
  }
  double sum = 0.0;
  for (float v : x) {
    if (v != -std::numeric_limits<float>::infinity()) sum += std::exp(v - m);
  }
  const float lse = std::log(static_cast<float>(sum));
  for (size_t i = 0; i < x.size(); ++i) out[i] = (x[i] - m) - lse;
}

std::vector<float> log_softmax(std::span<const float> x) {
  std::vector<float> out(x.size());
  log_softmax(x, out);
  return out;
}

void cumsum(std::span<const float> x, std::span<float> out) {
  check_same_size(x.size(), out.size(), "cumsum");
  double acc = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    acc += x[i];
    out[i] = static_cast<float>(acc);
  }
}

void argsort_ascending(std::span<const float> x, std::span<int32_t> idx) {
  check_same_size(x.size(), idx.size(), "argsort_ascending");
  std::iota(idx.begin(), idx.end(), 0);
  // Ordering by (value, id) equals a stable sort by value, and std::sort needs
  // no temporary buffer where std::stable_sort allocates one. NaN sorts last
  // so that comparisons stay a strict weak ordering.
  std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) {
    const float va = x[a], vb = x[b];
    const bool na = std::isnan(va), nb = std::isnan(vb);
    if (na || nb) return na == nb ? a < b : nb;
    return va < vb || (va == vb && a < b);
  });
}

std::vector<int32_t> argsort_ascending(std::span<const float> x) {
  std::vector<int32_t> idx(x.size());
  argsort_ascending(x, idx);
  return idx;
}

float kth_largest(std::span<const float> x, int64_t k, std::vector<float>& work) {
  if (k < 1 || k > static_cast<int64_t>(x.size()))
    throw Error("sampling: kth_largest: k=" + std::to_string(k) + " outside [1, " +
                std::to_string(x.size()) + "]");
  auto value = [](float f) { return std::isnan(f) ? -std::numeric_limits<float>::infinity() : f; };
  const size_t kk = static_cast<size_t>(k);
  work.clear();
  if (kk <= 256) {
    // Small k (top_k, min_tokens_to_keep): a min-heap of the k best seen so
    // far costs one comparison for most elements instead of a full copy.
    work.reserve(kk);
    for (float f : x) {
      const float v = value(f);
      if (work.size() < kk) {
        work.push_back(v);
        std::push_heap(work.begin(), work.end(), std::greater<float>());
      } else if (v > work.front()) {
        std::pop_heap(work.begin(), work.end(), std::greater<float>());
        work.back() = v;
        std::push_heap(work.begin(), work.end(), std::greater<float>());
      }
    }
    return work.front();
  }
  work.resize(x.size());
  std::transform(x.begin(), x.end(), work.begin(), value);
  std::nth_element(work.begin(), work.begin() + (k - 1), work.end(), std::greater<float>());
  return work[static_cast<size_t>(k - 1)];
}

float kth_largest(std::span<const float> x, int64_t k) {
  std::vector<float> work;
  return kth_largest(x, k, work);
}

int64_t count_survivors(std::span<const float> x) {
  int64_t n = 0;
  for (float v : x) {
    if (v > -std::numeric_limits<float>::infinity()) ++n;
  }
  return n;
}

}  // namespace nucleus::sampling
