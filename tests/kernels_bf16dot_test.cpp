// The BF16-dot reduction definition (kernels/matmul_bf16dot.h): the
// AVX-512 BF16 kernel (vdpbf16ps itself) and the AVX2 emulation both equal
// the scalar reference bit for bit, on data spanning F32's whole exponent
// range (denormals, underflowing and overflowing products included), for any
// batch size, thread count and row length. Since the AVX-512 kernel is the
// instruction, its agreement with the reference is what checks that the
// reference models vdpbf16ps and vcvtne2ps2bf16 exactly. Also: no
// allocation once the workspace has grown, and bad input is an Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "alloc_counter.h"
#include "kernels/dtype.h"
#include "kernels/matmul_bf16dot.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace nucleus::kernels {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Mostly ordinary magnitudes, plus a share of random bit patterns of every
// exponent (zero, denormal, huge), so FTZ/DAZ and rounding edges get hit.
float sample(std::mt19937& g, bool wild) {
  if (wild && g() % 4 == 0) {
    const uint32_t e = g() % 255;  // no inf/nan
    return from_bits((g() & 0x807fffffu) | (e << 23));
  }
  std::normal_distribution<float> d(0.0f, 1.0f);
  return d(g);
}

struct Case {
  std::vector<uint16_t> w;
  std::vector<float> x;
  Matrix m;
};

Case make(int64_t rows, int64_t cols, int64_t n, uint32_t seed, bool wild) {
  std::mt19937 g(seed);
  Case c;
  c.w.resize(static_cast<size_t>(rows * cols));
  for (auto& v : c.w) v = fp32_to_bf16(sample(g, wild));
  c.x.resize(static_cast<size_t>(n * cols));
  for (auto& v : c.x) v = sample(g, wild);
  c.m.type = DType::BF16;
  c.m.rows = rows;
  c.m.cols = cols;
  c.m.data = reinterpret_cast<const uint8_t*>(c.w.data());
  return c;
}

void expect_bits_equal(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
    ASSERT_TRUE(both_nan || bits(a[i]) == bits(b[i]))
        << what << " element " << i << ": " << a[i] << " vs " << b[i];
  }
}

std::vector<Bf16DotIsa> isas() {
  std::vector<Bf16DotIsa> v;
  for (Bf16DotIsa i : {Bf16DotIsa::kAvx2, Bf16DotIsa::kAvx512})
    if (bf16dot_isa_supported(i)) v.push_back(i);
  return v;
}

TEST(Bf16Dot, RoundingMatchesVcvtne2ps2bf16Definition) {
  // Hand-checked against Intel's pseudo-code for VCVTNE2PS2BF16.
  EXPECT_EQ(bf16dot_round(1.0f), 0x3f80);
  EXPECT_EQ(bf16dot_round(from_bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(bf16dot_round(from_bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(bf16dot_round(from_bits(0x3f808001u)), 0x3f81);
  EXPECT_EQ(bf16dot_round(from_bits(0x00400000u)), 0x0000);  // denormal -> +0
  EXPECT_EQ(bf16dot_round(from_bits(0x80400000u)), 0x8000);  // denormal -> -0
  EXPECT_EQ(bf16dot_round(from_bits(0x7f7fffffu)), 0x7f80);  // rounds to +inf
  EXPECT_EQ(bf16dot_round(INFINITY), 0x7f80);
  EXPECT_EQ(bf16dot_round(from_bits(0x7f800001u)) & 0x7fc0, 0x7fc0);  // quiet NaN
}

TEST(Bf16Dot, EveryIsaEqualsReferenceBitForBit) {
  ThreadPool pool1(1), pool2(2);
  MatmulWorkspace ws;
  uint32_t seed = 1;
  for (bool wild : {false, true}) {
    for (int64_t cols : {1, 2, 31, 32, 33, 64, 100, 288}) {
      for (int64_t n : {1, 2, 3, 5, 9, 17}) {
        const int64_t rows = 13;
        Case c = make(rows, cols, n, seed++, wild);
        std::vector<float> ref(static_cast<size_t>(n * rows));
        matmul_bf16dot_reference(c.m, c.x.data(), n, ref.data());
        for (Bf16DotIsa isa : isas()) {
          for (ThreadPool* pool : {&pool1, &pool2}) {
            std::vector<float> y(ref.size(), -1.0f);
            matmul_bf16dot(isa, c.m, c.x.data(), n, y.data(), *pool, ws);
            SCOPED_TRACE(testing::Message()
                         << "isa " << static_cast<int>(isa) << " cols " << cols << " n " << n
                         << " threads " << pool->size() << " wild " << wild);
            expect_bits_equal(y, ref, "kernel vs reference");
          }
        }
      }
    }
  }
}

TEST(Bf16Dot, LongPrefillEqualsReference) {
  // Enough activation rows for several of the AVX-512 prefill's L2 blocks
  // (256 KiB: 128 rows of 1024 columns) with a short last one, and a row
  // count that leaves every tile remainder (6-row tiles, then 2, then 1).
  const int64_t rows = 67, cols = 1024, n = 301;
  Case c = make(rows, cols, n, 91, false);
  std::vector<float> ref(static_cast<size_t>(n * rows));
  matmul_bf16dot_reference(c.m, c.x.data(), n, ref.data());
  ThreadPool pool(2);
  MatmulWorkspace ws;
  for (Bf16DotIsa isa : isas()) {
    std::vector<float> y(ref.size(), -1.0f);
    matmul_bf16dot(isa, c.m, c.x.data(), n, y.data(), pool, ws);
    SCOPED_TRACE(testing::Message() << "isa " << static_cast<int>(isa));
    expect_bits_equal(y, ref, "kernel vs reference");
  }
}

TEST(Bf16Dot, RowResultIndependentOfBatchSizeAndThreads) {
  // A model-sized matrix, so the work is split into many tasks.
  const int64_t rows = 300, cols = 768, n = 23;
  Case c = make(rows, cols, n, 77, false);
  ThreadPool pool1(1), pool2(2);
  MatmulWorkspace ws;
  for (Bf16DotIsa isa : isas()) {
    std::vector<float> all(static_cast<size_t>(n * rows));
    matmul_bf16dot(isa, c.m, c.x.data(), n, all.data(), pool2, ws);
    for (int64_t r : {int64_t{0}, int64_t{11}, n - 1}) {
      std::vector<float> one(static_cast<size_t>(rows));
      matmul_bf16dot(isa, c.m, c.x.data() + r * cols, 1, one.data(), pool1, ws);
      std::vector<float> slice(all.begin() + r * rows, all.begin() + (r + 1) * rows);
      expect_bits_equal(one, slice, "decode row vs batched row");
    }
  }
}

TEST(Bf16Dot, CloseToF32WideningDefinition) {
  // Sanity on the numerics: only activation rounding to BF16 separates the
  // two definitions (relative error ~2^-9 per product, averaging out).
  const int64_t rows = 32, cols = 512, n = 3;
  Case c = make(rows, cols, n, 5, false);
  std::vector<float> a(static_cast<size_t>(n * rows)), b(a.size());
  matmul_bf16dot_reference(c.m, c.x.data(), n, a.data());
  matmul_reference(c.m, c.x.data(), n, b.data());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 0.25f) << i;
}

TEST(Bf16Dot, NoAllocationOnceWorkspaceHasGrown) {
  Case c = make(64, 288, 5, 9, false);
  std::vector<float> y(static_cast<size_t>(5 * 64));
  ThreadPool pool(2);
  MatmulWorkspace ws;
  for (Bf16DotIsa isa : isas()) {
    matmul_bf16dot(isa, c.m, c.x.data(), 5, y.data(), pool, ws);
    const long before = testutil::allocations();
    matmul_bf16dot(isa, c.m, c.x.data(), 5, y.data(), pool, ws);
    matmul_bf16dot(isa, c.m, c.x.data(), 1, y.data(), pool, ws);
    EXPECT_EQ(testutil::allocations(), before);
  }
}

TEST(Bf16Dot, BadInputIsAnError) {
  Case c = make(4, 8, 1, 3, false);
  c.m.type = DType::F16;
  std::vector<float> y(4);
  ThreadPool pool(1);
  MatmulWorkspace ws;
  EXPECT_THROW(matmul_bf16dot(c.m, c.x.data(), 1, y.data(), pool, ws), Error);
  EXPECT_THROW(matmul_bf16dot_reference(c.m, c.x.data(), 1, y.data()), Error);
  EXPECT_THROW(parse_bf16_dot("maybe"), Error);
  EXPECT_EQ(parse_bf16_dot("on"), Bf16Dot::kOn);
  EXPECT_TRUE(bf16dot_enabled(Bf16Dot::kOn));
  EXPECT_FALSE(bf16dot_enabled(Bf16Dot::kOff));
  // auto is never on without AVX512_BF16.
  if (!bf16dot_isa_supported(Bf16DotIsa::kAvx512)) {
    EXPECT_FALSE(bf16dot_enabled(Bf16Dot::kAuto));
  }
  std::printf("bf16 dot / f32 fma probe ratio: %.2f (auto -> %s)\n", bf16dot_probe_ratio(),
              bf16dot_pays() ? "on" : "off");
}

}  // namespace
}  // namespace nucleus::kernels
