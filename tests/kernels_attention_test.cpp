// The vectorised exp against std::exp, attention_head against a direct
// double-precision softmax(q·K/√d)·V computed here from the definition, and
// F16/Q8_0 KV blocks against F32 attention over their scalar conversion.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "kernels/kv_layout.h"
#include "kernels/vec_math.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

TEST(VecMath, ExpIsWithinTwoUlpOfStdExp) {
  double worst = 0.0;
  float worst_x = 0.0f;
  for (int i = 0; i <= 1 << 20; i += 8) {
    alignas(32) float x[8], y[8];
    for (int t = 0; t < 8; ++t) x[t] = -87.0f + 175.0f * static_cast<float>(i + t) / (1 << 20);
    _mm256_store_ps(y, exp8(_mm256_load_ps(x)));
    for (int t = 0; t < 8; ++t) {
      const double ref = std::exp(static_cast<double>(x[t]));
      // Relative error in units of the float spacing at ref.
      const double ulp = std::ldexp(1.0, std::ilogb(ref) - 23);
      const double err = std::fabs(y[t] - ref) / ulp;
      if (err > worst) {
        worst = err;
        worst_x = x[t];
      }
    }
  }
  std::printf("exp8: worst error %.3f ulp at x = %g\n", worst, static_cast<double>(worst_x));
  EXPECT_LE(worst, 2.0) << "at x = " << worst_x;
  alignas(32) float x[8] = {0.0f, -1e-30f, 1.0f, -1.0f, -200.0f, 200.0f, -87.3f, 88.0f}, y[8];
  _mm256_store_ps(y, exp8(_mm256_load_ps(x)));
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_NEAR(y[2], 2.7182817f, 3e-7f);
  EXPECT_LT(y[4], 1e-37f);  // clamped: ~exp(-87.3), negligible in any sum
  EXPECT_GT(y[5], 1e38f);
}

struct Case {
  int64_t n_heads, n_kv_heads, head_dim, positions;
};

// K/V rows of every position (positions × kv_dim floats) paged into blocks
// of `block` positions in the layout attention reads (kernels/kv_layout.h),
// stored as `type`.
struct Paged {
  std::vector<std::vector<uint8_t>> k, v;
  std::vector<const void*> kp, vp;
  // The same blocks as float pointers (F32 only), for the float overloads.
  std::vector<const float*> kf, vf;
};
Paged page(const Case& c, int64_t block, DType type, const std::vector<float>& krows,
           const std::vector<float>& vrows) {
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  const KvLayout layout{type, c.n_kv_heads, c.head_dim, block};
  const int64_t nb = (c.positions + block - 1) / block;
  Paged pg;
  // Unwritten positions of the last block hold NaN: attention must not read them.
  std::vector<uint8_t> fill(layout.block_bytes(), 0xff);
  pg.k.assign(static_cast<size_t>(nb), fill);
  pg.v.assign(static_cast<size_t>(nb), fill);
  for (int64_t p = 0; p < c.positions; ++p) {
    kv_write_key(layout, pg.k[p / block].data(), p % block, krows.data() + p * kv_dim);
    kv_write_value(layout, pg.v[p / block].data(), p % block, vrows.data() + p * kv_dim);
  }
  for (int64_t b = 0; b < nb; ++b) {
    pg.kp.push_back(pg.k[b].data());
    pg.vp.push_back(pg.v[b].data());
    pg.kf.push_back(reinterpret_cast<const float*>(pg.k[b].data()));
    pg.vf.push_back(reinterpret_cast<const float*>(pg.v[b].data()));
  }
  return pg;
}

// Random K/V rows for a case (keys scaled by key_scale to spread the
// scores), paged as F32 blocks of `block` positions, and a random query row
// of all heads.
struct Inputs {
  std::vector<float> krows, vrows;
  Paged f32;  // moved, never copied: kp/vp point into its blocks
  std::vector<const float*> kp, vp;
  std::vector<float> q;
};
Inputs random_inputs(const Case& c, int64_t block, uint32_t seed, float key_scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  Inputs in;
  in.krows.resize(static_cast<size_t>(c.positions * kv_dim));
  in.vrows.resize(in.krows.size());
  for (int64_t i = 0; i < c.positions * kv_dim; ++i) {
    in.krows[i] = key_scale * dist(rng);
    in.vrows[i] = dist(rng);
  }
  in.f32 = page(c, block, DType::F32, in.krows, in.vrows);
  in.kp = in.f32.kf;
  in.vp = in.f32.vf;
  in.q.resize(c.n_heads * c.head_dim);
  for (auto& x : in.q) x = dist(rng);
  return in;
}

TEST(Attention, MatchesDirectSoftmaxInDouble) {
  const int64_t block = 16;
  for (const Case& c :
       {Case{4, 2, 64, 1}, Case{4, 2, 64, 3}, Case{4, 2, 64, 16}, Case{4, 2, 64, 17},
        Case{8, 2, 64, 100}, Case{2, 1, 128, 37}, Case{3, 3, 6, 21}, Case{2, 2, 12, 33}}) {
    const int64_t kv_dim = c.n_kv_heads * c.head_dim;
    Inputs in =
        random_inputs(c, block, static_cast<uint32_t>(c.positions * 131 + c.head_dim), 2.0f);
    const auto& kp = in.kp;
    const auto& vp = in.vp;
    const auto& q = in.q;
    const AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim, block};
    for (int64_t h = 0; h < c.n_heads; ++h) {
      std::vector<float> out(c.head_dim, -1.0f);
      attention_head(shape, q.data() + h * c.head_dim, kp, vp, c.positions, h, out.data());
      const int64_t kvh = h / (c.n_heads / c.n_kv_heads);
      std::vector<double> s(c.positions);
      double mx = -1e300;
      for (int64_t p = 0; p < c.positions; ++p) {
        const float* k = in.krows.data() + p * kv_dim + kvh * c.head_dim;
        double dot = 0.0;
        for (int64_t d = 0; d < c.head_dim; ++d) dot += double{q[h * c.head_dim + d]} * k[d];
        s[p] = dot / std::sqrt(static_cast<double>(c.head_dim));
        mx = std::max(mx, s[p]);
      }
      double z = 0.0;
      for (double& v : s) z += (v = std::exp(v - mx));
      for (int64_t d = 0; d < c.head_dim; ++d) {
        double ref = 0.0;
        for (int64_t p = 0; p < c.positions; ++p)
          ref += s[p] / z * in.vrows[p * kv_dim + kvh * c.head_dim + d];
        ASSERT_NEAR(out[d], ref, 2e-6)
            << "heads " << c.n_heads << " hd " << c.head_dim << " positions " << c.positions
            << " head " << h << " d " << d;
      }
    }
  }
}

// The grouped pass (all query heads of a KV head per block) must give every
// head exactly attention_head's bits: batch invariance rests on a head's
// arithmetic not depending on how the heads are scheduled.
TEST(Attention, GroupedPassEqualsPerHeadBitForBit) {
  const int64_t block = 16;
  for (const Case& c : {Case{8, 2, 64, 37}, Case{4, 4, 64, 16}, Case{6, 2, 12, 50}}) {
    const Inputs in = random_inputs(c, block, 7, 1.0f);
    const auto& kp = in.kp;
    const auto& vp = in.vp;
    const auto& q = in.q;
    const AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim, block};
    std::vector<float> grouped(q.size(), -1.0f), single(q.size(), -2.0f);
    for (int64_t kvh = 0; kvh < c.n_kv_heads; ++kvh)
      attention_kv_group(shape, q.data(), kp, vp, c.positions, kvh, grouped.data());
    for (int64_t h = 0; h < c.n_heads; ++h)
      attention_head(shape, q.data() + h * c.head_dim, kp, vp, c.positions, h,
                     single.data() + h * c.head_dim);
    ASSERT_EQ(0, std::memcmp(grouped.data(), single.data(), q.size() * sizeof(float)))
        << "heads " << c.n_heads << " kv " << c.n_kv_heads;
  }
}

// The scores and value sums through AVX-512 (16 positions, or 16 output
// dimensions, per register) must give the AVX2 path's bits: each lane does
// the same operations in the same order. Groups of 1 to 12 heads cover every
// tile of both score kernels, and head sizes not a multiple of 16 the AVX2
// value sums.
TEST(Attention, Avx512EqualsAvx2BitForBit) {
  if (!attention_avx512_default()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int64_t block = 16;
  for (const Case& c :
       {Case{8, 2, 64, 1}, Case{8, 2, 64, 31}, Case{8, 2, 64, 33}, Case{4, 1, 128, 300},
        Case{6, 3, 48, 77}, Case{4, 2, 80, 65}, Case{12, 1, 64, 70}, Case{7, 1, 24, 45},
        Case{5, 5, 8, 19}, Case{22, 2, 32, 90}}) {
    const Inputs in = random_inputs(c, block, 11, 1.5f);
    AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim, block};
    std::vector<float> wide(in.q.size(), -1.0f), narrow(in.q.size(), -2.0f);
    for (int64_t kvh = 0; kvh < c.n_kv_heads; ++kvh) {
      shape.avx512 = true;
      attention_kv_group(shape, in.q.data(), in.kp, in.vp, c.positions, kvh, wide.data());
      shape.avx512 = false;
      attention_kv_group(shape, in.q.data(), in.kp, in.vp, c.positions, kvh, narrow.data());
    }
    ASSERT_EQ(0, std::memcmp(wide.data(), narrow.data(), in.q.size() * sizeof(float)))
        << "hd " << c.head_dim << " positions " << c.positions;
  }
}

// The online softmax steps over chunks of positions, not KV blocks, so the
// same rows paged into blocks of any size give the same bits.
TEST(Attention, ResultDoesNotDependOnTheKvBlockSize) {
  const Case c{8, 2, 64, 150};
  const Inputs ref = random_inputs(c, c.positions, 5, 1.5f);  // one block holds every row
  std::vector<float> expect(ref.q.size());
  for (int64_t kvh = 0; kvh < c.n_kv_heads; ++kvh)
    attention_kv_group(AttentionShape{c.n_heads, c.n_kv_heads, c.head_dim, c.positions},
                       ref.q.data(), ref.kp, ref.vp, c.positions, kvh, expect.data());
  for (int64_t block : {1, 7, 16, 48}) {
    const Paged pg = page(c, block, DType::F32, ref.krows, ref.vrows);
    const auto& kp = pg.kf;
    const auto& vp = pg.vf;
    std::vector<float> got(ref.q.size(), -1.0f);
    for (int64_t kvh = 0; kvh < c.n_kv_heads; ++kvh)
      attention_kv_group(AttentionShape{c.n_heads, c.n_kv_heads, c.head_dim, block}, ref.q.data(),
                         kp, vp, c.positions, kvh, got.data());
    ASSERT_EQ(0, std::memcmp(got.data(), expect.data(), got.size() * sizeof(float)))
        << "block " << block;
  }
}

// KV blocks stored as F16 / Q8_0 (kv_write_*: the scalar dtype.cpp
// conversions, ggml-exact), and those read back as floats (kv_read_*) and
// paged as F32 — the reference the attention's own vector conversion must
// equal lane for lane.
struct StoredInputs {
  Paged typed;
  Inputs deq;
};
StoredInputs store(const Inputs& in, const Case& c, int64_t block, DType type) {
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  StoredInputs s;
  s.typed = page(c, block, type, in.krows, in.vrows);
  const KvLayout layout{type, c.n_kv_heads, c.head_dim, block};
  s.deq.q = in.q;
  s.deq.krows.resize(in.krows.size());
  s.deq.vrows.resize(in.vrows.size());
  for (int64_t p = 0; p < c.positions; ++p) {
    kv_read_key(layout, s.typed.k[p / block].data(), p % block, s.deq.krows.data() + p * kv_dim);
    kv_read_value(layout, s.typed.v[p / block].data(), p % block, s.deq.vrows.data() + p * kv_dim);
  }
  s.deq.f32 = page(c, block, DType::F32, s.deq.krows, s.deq.vrows);
  s.deq.kp = s.deq.f32.kf;
  s.deq.vp = s.deq.f32.vf;
  return s;
}

// Attention reading F16/Q8_0 blocks gives exactly the bits of F32 attention
// over the reference conversion of those blocks (so every invariance of the
// F32 path carries over), for the grouped and the per-head pass; head sizes
// that are not a multiple of 8 and Q8_0 blocks shared by several heads
// included. And the error the storage costs against the double-precision
// softmax of the unrounded inputs stays small.
// Both ISAs' conversions (AVX-512 where the CPU has it), and blocks of 16
// (whole 16-position key segments) and 7 (segments cut by block ends).
TEST(Attention, StoredKvTypesEqualF32OverTheirConversionBitForBit) {
  for (bool wide : {false, true})
    for (int64_t block : {16, 7})
      for (DType type : {DType::F16, DType::Q8_0}) {
        if (wide && !attention_avx512_default()) continue;
        for (const Case& c : {Case{8, 2, 64, 100}, Case{4, 4, 8, 37}, Case{16, 8, 12, 41},
                              Case{2, 1, 32, 16}, Case{4, 2, 64, 1}, Case{6, 2, 16, 50}}) {
          SCOPED_TRACE(testing::Message() << "avx512 " << wide << " block " << block);
          const Inputs in = random_inputs(c, block, static_cast<uint32_t>(c.positions + 5), 2.0f);
          const StoredInputs st = store(in, c, block, type);
          AttentionShape f32{c.n_heads, c.n_kv_heads, c.head_dim, block};
          f32.avx512 = wide;
          AttentionShape typed = f32;
          typed.kv_type = type;
          const size_t width = in.q.size();
          std::vector<float> want(width, -1.0f), grouped(width, -2.0f), single(width, -3.0f);
          for (int64_t kvh = 0; kvh < c.n_kv_heads; ++kvh) {
            attention_kv_group(f32, in.q.data(), st.deq.kp, st.deq.vp, c.positions, kvh,
                               want.data());
            attention_kv_group(typed, in.q.data(), st.typed.kp, st.typed.vp, c.positions, kvh,
                               grouped.data());
          }
          for (int64_t h = 0; h < c.n_heads; ++h)
            attention_head(typed, in.q.data() + h * c.head_dim, st.typed.kp, st.typed.vp,
                           c.positions, h, single.data() + h * c.head_dim);
          ASSERT_EQ(0, std::memcmp(want.data(), grouped.data(), width * 4))
              << dtype_name(type) << " heads " << c.n_heads << " hd " << c.head_dim;
          ASSERT_EQ(0, std::memcmp(want.data(), single.data(), width * 4))
              << dtype_name(type) << " heads " << c.n_heads << " hd " << c.head_dim;
          // Against the unrounded inputs: F32 attention is within 2e-6 of the
          // exact result (MatchesDirectSoftmaxInDouble), so this is the storage's cost.
          std::vector<float> exact(width);
          for (int64_t kvh = 0; kvh < c.n_kv_heads; ++kvh)
            attention_kv_group(f32, in.q.data(), in.kp, in.vp, c.positions, kvh, exact.data());
          float worst = 0.0f;
          for (size_t i = 0; i < width; ++i) worst = std::max(worst, std::fabs(exact[i] - want[i]));
          EXPECT_LT(worst, type == DType::F16 ? 5e-3f : 6e-2f) << dtype_name(type);
        }
      }
}

TEST(Attention, RejectsStoredTypesItCannotRead) {
  std::vector<uint8_t> k(64 * 34), v(64 * 34);
  std::vector<float> q(64), out(64);
  const void* kp[] = {k.data()};
  const void* vp[] = {v.data()};
  AttentionShape shape{1, 1, 24, 16, DType::Q8_0};  // a 24-element row is not whole Q8_0 blocks
  EXPECT_THROW(attention_head(shape, q.data(), kp, vp, 4, 0, out.data()), Error);
  shape = {1, 1, 32, 16, DType::Q4_0};
  EXPECT_THROW(attention_head(shape, q.data(), kp, vp, 4, 0, out.data()), Error);
  shape = {1, 1, 1024, 1, DType::F16};  // head_dim 1024 exceeds the conversion scratch
  EXPECT_THROW(attention_head(shape, q.data(), kp, vp, 4, 0, out.data()), Error);
  const float* fk[] = {reinterpret_cast<const float*>(k.data())};
  shape = {1, 1, 32, 16, DType::F16};  // float blocks must be F32
  EXPECT_THROW(attention_head(shape, q.data(), fk, fk, 4, 0, out.data()), Error);
}

TEST(Attention, RejectsBlockSizeBeyondItsScratch) {
  std::vector<float> k(300 * 8), v(300 * 8), q(8), out(8);
  const float* kp[] = {k.data()};
  const float* vp[] = {v.data()};
  EXPECT_THROW(attention_head(AttentionShape{1, 1, 8, 300}, q.data(), kp, vp, 10, 0, out.data()),
               Error);
}

}  // namespace
}  // namespace nucleus::kernels
