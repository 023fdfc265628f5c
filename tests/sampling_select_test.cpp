// Token choice: greedy, inverse-CDF sampling, the counter-based RNG, log-softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <thread>
#include <vector>

#include "sampling/math.h"
#include "sampling/select.h"
#include "util/error.h"

using namespace nucleus::sampling;

TEST(SamplingRng, SplitMix64MatchesPublishedSequence) {
  // SplitMix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c) seeded with 0
  // outputs 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F: the
  // generator adds the golden gamma and then mixes, which is mix(k * gamma).
  EXPECT_EQ(splitmix64_mix(0), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(splitmix64_mix(0x9E3779B97F4A7C15ULL), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(splitmix64_mix(0x9E3779B97F4A7C15ULL * 2), 0x06C45D188009454FULL);
}

TEST(SamplingRng, KeyIsTheDocumentedComposition) {
  const uint64_t seed = 1234, seq = 7, step = 99;
  EXPECT_EQ(rng_key(seed, seq, step),
            splitmix64_mix(splitmix64_mix(splitmix64_mix(seed) ^ seq) ^ step));
  EXPECT_EQ(uniform(seed, seq, step),
            static_cast<double>(rng_key(seed, seq, step) >> 11) / 9007199254740992.0);
}

TEST(SamplingRng, SameTripleSameDraw) {
  for (uint64_t s = 0; s < 50; ++s) EXPECT_EQ(uniform(42, 3, s), uniform(42, 3, s));
  const std::vector<float> logits = {0.1f, 0.5f, -0.3f, 1.2f, 0.0f};
  for (uint64_t s = 0; s < 50; ++s) EXPECT_EQ(sample(logits, 42, 3, s), sample(logits, 42, 3, s));
}

TEST(SamplingRng, DrawsAreInUnitIntervalAndVary) {
  std::set<double> seen;
  double mean = 0.0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double u = uniform(7, 0, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    seen.insert(u);
    mean += u;
  }
  mean /= n;
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  // sd of the mean of n uniforms is 1/sqrt(12 n) = 0.002; allow 5 sd.
  EXPECT_NEAR(mean, 0.5, 0.01);
}

TEST(SamplingRng, DifferentSequencesAreIndependent) {
  // Correlation between sequence 0's and sequence 1's draws at the same steps
  // (and between seeds): sd about 1/sqrt(n) = 0.007; allow 0.03.
  const int n = 20000;
  auto corr = [&](auto a, auto b) {
    double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; ++i) {
      const double x = a(i), y = b(i);
      sa += x;
      sb += y;
      sab += x * y;
      saa += x * x;
      sbb += y * y;
    }
    const double cov = sab / n - (sa / n) * (sb / n);
    return cov / std::sqrt((saa / n - (sa / n) * (sa / n)) * (sbb / n - (sb / n) * (sb / n)));
  };
  EXPECT_LT(std::fabs(corr([](int i) { return uniform(5, 0, i); },
                           [](int i) { return uniform(5, 1, i); })),
            0.03);
  EXPECT_LT(std::fabs(corr([](int i) { return uniform(5, 0, i); },
                           [](int i) { return uniform(6, 0, i); })),
            0.03);
  EXPECT_LT(std::fabs(corr([](int i) { return uniform(5, 0, i); },
                           [](int i) { return uniform(5, 0, i + 1); })),
            0.03);
  int same = 0;
  for (int i = 0; i < 1000; ++i) same += uniform(5, 0, i) == uniform(5, 1, i);
  EXPECT_EQ(same, 0);
}

TEST(SamplingRng, ThreadCountDoesNotChangeTokens) {
  const std::vector<float> logits = {1.0f, 0.9f, 0.8f, 0.2f, -1.0f, 0.5f};
  const int seqs = 8, steps = 200;
  std::vector<int32_t> serial(seqs * steps), threaded(seqs * steps);
  for (int q = 0; q < seqs; ++q)
    for (int s = 0; s < steps; ++s) serial[q * steps + s] = sample(logits, 99, q, s);
  // Reverse order, several threads, interleaved sequences.
  std::vector<std::thread> pool;
  for (int t = 0; t < 3; ++t) {
    pool.emplace_back([&, t] {
      for (int q = seqs - 1 - t; q >= 0; q -= 3)
        for (int s = steps - 1; s >= 0; --s) threaded[q * steps + s] = sample(logits, 99, q, s);
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(serial, threaded);
}

TEST(SamplingSelect, InverseCdfInIdOrder) {
  // probs 0.2, 0, 0.5, 0.3 -> cumulative 0.2, 0.2, 0.7, 1.0 over positive ids:
  // u in [0, 0.2) -> 0; [0.2, 0.7) -> 2 (id 1 has no mass); [0.7, 1) -> 3.
  const std::vector<float> p = {0.2f, 0.0f, 0.5f, 0.3f};
  EXPECT_EQ(sample_from_probs(p, 0.0), 0);
  EXPECT_EQ(sample_from_probs(p, 0.19), 0);
  EXPECT_EQ(sample_from_probs(p, 0.21), 2);
  EXPECT_EQ(sample_from_probs(p, 0.69), 2);
  EXPECT_EQ(sample_from_probs(p, 0.71), 3);
  EXPECT_EQ(sample_from_probs(p, 0.999999), 3);
  // Unnormalised input: u scales the total (here 2.0), so 0.5 -> target 1.0 -> id 2.
  const std::vector<float> q = {0.4f, 0.0f, 1.0f, 0.6f};
  EXPECT_EQ(sample_from_probs(q, 0.5), 2);
  EXPECT_THROW(sample_from_probs(std::vector<float>{0.0f, 0.0f}, 0.5), nucleus::Error);
  EXPECT_THROW(sample_from_probs(p, 1.0), nucleus::Error);
}

TEST(SamplingSelect, FrequenciesFollowProbabilities) {
  // logits = ln p, so softmax gives p back; 20000 draws over steps of one sequence.
  const std::vector<double> p = {0.5, 0.25, 0.15, 0.07, 0.03, 0.0};
  std::vector<float> logits;
  for (double v : p) logits.push_back(v > 0 ? static_cast<float>(std::log(v)) : -INFINITY);
  const int n = 20000;
  std::vector<int> count(p.size(), 0);
  for (int s = 0; s < n; ++s) ++count[sample(logits, 2024, 0, s)];
  for (size_t i = 0; i < p.size(); ++i) {
    // 3.5 sd of a binomial proportion at p = 0.5 is 0.0124.
    EXPECT_NEAR(static_cast<double>(count[i]) / n, p[i], 0.0125) << "id " << i;
  }
  EXPECT_EQ(count[5], 0);
}

TEST(SamplingSelect, GreedyLowestIdOnTies) {
  EXPECT_EQ(greedy(std::vector<float>{1.0f, 3.0f, 2.0f, 3.0f}), 1);
  EXPECT_EQ(greedy(std::vector<float>{NAN, -1.0f, -INFINITY}), 1);
  EXPECT_EQ(greedy(std::vector<float>{-INFINITY, -INFINITY, 0.0f}), 2);
  EXPECT_THROW(greedy(std::vector<float>{-INFINITY, NAN}), nucleus::Error);
  EXPECT_THROW(greedy(std::vector<float>{}), nucleus::Error);
}

TEST(SamplingMath, LogSoftmaxByHand) {
  // logits ln1, ln3 -> probabilities 1/4, 3/4 -> log-probs ln(0.25), ln(0.75); -inf stays -inf.
  const std::vector<float> x = {0.0f, static_cast<float>(std::log(3.0)), -INFINITY};
  const std::vector<float> lp = log_softmax(x);
  EXPECT_NEAR(lp[0], std::log(0.25), 1e-6);
  EXPECT_NEAR(lp[1], std::log(0.75), 1e-6);
  EXPECT_EQ(lp[2], -INFINITY);
  const std::vector<float> p = softmax(x);
  EXPECT_NEAR(p[0], 0.25, 1e-7);
  EXPECT_NEAR(p[1], 0.75, 1e-7);
  EXPECT_EQ(p[2], 0.0f);
  // All removed: zeros / -inf instead of NaN.
  const std::vector<float> none = {-INFINITY, -INFINITY};
  EXPECT_EQ(softmax(none), std::vector<float>({0.0f, 0.0f}));
  EXPECT_EQ(log_softmax(none)[0], -INFINITY);
}
