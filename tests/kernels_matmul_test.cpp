// SIMD matmul paths against the scalar reference (matmul_reference), batch
// invariance (bit-identical rows however they are batched or threaded), the
// two ISAs against each other, bad input, and no allocation per call.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include "alloc_counter.h"
#include "kernels/dtype.h"
#include "kernels/matmul.h"
#include "kernels/quant_pack.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace nucleus::kernels {
namespace {

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

bool quantized(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0;
}

std::vector<MatmulIsa> isas() {
  std::vector<MatmulIsa> v;
  for (MatmulIsa i : {MatmulIsa::kAvx2, MatmulIsa::kAvx512})
    if (matmul_isa_supported(i)) v.push_back(i);
  return v;
}

struct Weights {
  std::vector<uint8_t> bytes;
  Matrix m;
};

Weights random_weights(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Weights w;
  const size_t rb = row_bytes(t, cols);
  w.bytes.resize(rb * static_cast<size_t>(rows) + 1);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = dist(rng);
    quantize_row(t, row.data(), w.bytes.data() + r * rb, cols);
  }
  w.m = Matrix{t, rows, cols, w.bytes.data()};
  return w;
}

std::vector<float> random_x(int64_t n, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (auto& v : x) v = dist(rng);
  return x;
}

// S = the sum of |terms| the result adds up. Float types: terms w_i·x_i.
// Quantized: per block s = fl(dw·dx) (the same rounded float in every path)
// times Σ|qw·qx|. Two recursive summations of the same K exact-or-once-rounded
// terms in different orders differ by at most about 2·(K+1)·u·S (u = 2^-24);
// K ≤ cols + 4 covers the lanes, the tree and the per-term rounding.
double abs_sum(const Matrix& w, const float* x, int64_t o) {
  const uint8_t* row = w.data + static_cast<size_t>(o) * row_bytes(w.type, w.cols);
  double s = 0.0;
  if (!quantized(w.type)) {
    std::vector<float> wf(static_cast<size_t>(w.cols));
    dequantize_row(w.type, row, wf.data(), w.cols);
    for (int64_t i = 0; i < w.cols; ++i) s += std::fabs(static_cast<double>(wf[i]) * x[i]);
    return s;
  }
  std::vector<BlockQ8_0> xq(static_cast<size_t>(w.cols / 32));
  quantize_row(DType::Q8_0, x, xq.data(), w.cols);
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    int qw[32];
    float dw;
    if (w.type == DType::Q8_0) {
      const auto& blk = reinterpret_cast<const BlockQ8_0*>(row)[b];
      dw = fp16_to_fp32(blk.d);
      for (int j = 0; j < 32; ++j) qw[j] = blk.qs[j];
    } else {
      const auto& blk = reinterpret_cast<const BlockQ4_0*>(row)[b];
      dw = fp16_to_fp32(blk.d);
      for (int j = 0; j < 16; ++j) {
        qw[j] = (blk.qs[j] & 15) - 8;
        qw[j + 16] = (blk.qs[j] >> 4) - 8;
      }
    }
    const float scale = dw * fp16_to_fp32(xq[b].d);
    long isum = 0;
    for (int j = 0; j < 32; ++j) isum += std::abs(qw[j] * xq[b].qs[j]);
    s += std::fabs(static_cast<double>(scale)) * static_cast<double>(isum);
  }
  return s;
}

std::string label(MatmulIsa isa, DType t, int64_t cols) {
  std::string s = matmul_isa_name(isa);
  s += " ";
  s += dtype_name(t);
  s += " cols=";
  s += std::to_string(cols);
  return s;
}

TEST(Matmul, SimdMatchesReferenceWithinSummationBound) {
  ThreadPool pool(2);
  MatmulWorkspace ws;
  const int64_t rows = 13;  // not a multiple of either tile height
  const int64_t n = 5;      // not a multiple of either tile width
  for (DType t : kTypes) {
    std::vector<int64_t> col_list = {32, 96, 160, 4128};
    if (!quantized(t)) col_list.insert(col_list.end(), {1, 7, 15, 17, 67});
    for (int64_t cols : col_list) {
      const Weights w = random_weights(t, rows, cols, 11 + static_cast<uint32_t>(cols));
      const std::vector<float> x = random_x(n, cols, 7);
      std::vector<float> ref(static_cast<size_t>(n * rows));
      matmul_reference(w.m, x.data(), n, ref.data());
      for (MatmulIsa isa : isas()) {
        std::vector<float> y(ref.size(), -1.0f);
        matmul(isa, w.m, x.data(), n, y.data(), pool, ws);
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t o = 0; o < rows; ++o) {
            const double bound = 2.0 * (static_cast<double>(cols) + 5.0) * std::ldexp(1.0, -24) *
                                 abs_sum(w.m, x.data() + r * cols, o);
            ASSERT_LE(std::fabs(static_cast<double>(y[r * rows + o]) - ref[r * rows + o]), bound)
                << label(isa, t, cols) << " row " << r << " out " << o << " ref "
                << ref[r * rows + o];
          }
        }
      }
    }
  }
}

TEST(Matmul, RowsAreBitIdenticalHoweverBatchedOrThreaded) {
  ThreadPool one(1), two(2);
  MatmulWorkspace ws;
  const int64_t rows = 37;
  const int64_t max_n = 16;
  for (DType t : kTypes) {
    for (int64_t cols : {int64_t{160}, int64_t{4128}, int64_t{67}}) {
      if (quantized(t) && cols % 32 != 0) continue;
      const Weights w = random_weights(t, rows, cols, 3);
      const std::vector<float> x = random_x(max_n, cols, 5);
      for (MatmulIsa isa : isas()) {
        // Each activation row alone, one thread.
        std::vector<float> alone(static_cast<size_t>(max_n * rows));
        for (int64_t r = 0; r < max_n; ++r)
          matmul(isa, w.m, x.data() + r * cols, 1, alone.data() + r * rows, one, ws);
        for (int64_t n : {1, 2, 3, 7, 16}) {
          for (ThreadPool* pool : {&one, &two}) {
            for (int64_t start = 0; start + n <= max_n; start += n) {
              std::vector<float> y(static_cast<size_t>(n * rows));
              matmul(isa, w.m, x.data() + start * cols, n, y.data(), *pool, ws);
              ASSERT_EQ(
                  0, std::memcmp(y.data(), alone.data() + start * rows, y.size() * sizeof(float)))
                  << label(isa, t, cols) << " n=" << n << " start=" << start
                  << " threads=" << pool->size();
            }
          }
        }
      }
    }
  }
}

TEST(Matmul, Avx2AndAvx512AreBitIdentical) {
  if (!matmul_isa_supported(MatmulIsa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  ThreadPool pool(2);
  MatmulWorkspace ws;
  for (DType t : kTypes) {
    for (int64_t cols : {int64_t{32}, int64_t{96}, int64_t{4128}, int64_t{67}, int64_t{5}}) {
      if (quantized(t) && cols % 32 != 0) continue;
      const Weights w = random_weights(t, 21, cols, 9);
      const std::vector<float> x = random_x(6, cols, 10);
      std::vector<float> a(6 * 21), b(6 * 21);
      matmul(MatmulIsa::kAvx2, w.m, x.data(), 6, a.data(), pool, ws);
      matmul(MatmulIsa::kAvx512, w.m, x.data(), 6, b.data(), pool, ws);
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)))
          << dtype_name(t) << " " << cols;
    }
  }
}

TEST(Matmul, DefaultPathAllocatesNothingOnceWarm) {
  ThreadPool pool(2);
  MatmulWorkspace ws;
  for (DType t : kTypes) {
    const Weights w = random_weights(t, 64, 256, 1);
    const std::vector<float> x = random_x(8, 256, 2);
    std::vector<float> y(8 * 64);
    matmul(w.m, x.data(), 8, y.data(), pool, ws);  // grows ws once
    const long before = testutil::allocations();
    for (int64_t n : {1, 8, 3}) matmul(w.m, x.data(), n, y.data(), pool, ws);
    EXPECT_EQ(testutil::allocations(), before) << dtype_name(t);
  }
}

TEST(Matmul, RejectsBadInput) {
  ThreadPool pool(1);
  MatmulWorkspace ws;
  std::vector<uint8_t> bytes(4096);
  std::vector<float> x(64), y(64);
  const Matrix q{DType::Q8_0, 1, 40, bytes.data()};
  EXPECT_THROW(matmul(q, x.data(), 1, y.data(), pool, ws), Error);
  EXPECT_THROW(matmul_reference(q, x.data(), 1, y.data()), Error);
  const Matrix bad_type{static_cast<DType>(5), 1, 32, bytes.data()};
  EXPECT_THROW(matmul(bad_type, x.data(), 1, y.data(), pool, ws), Error);
  const Matrix null_data{DType::F32, 1, 32, nullptr};
  EXPECT_THROW(matmul(null_data, x.data(), 1, y.data(), pool, ws), Error);
}

TEST(Matmul, ZeroColumnsGiveZeros) {
  ThreadPool pool(1);
  MatmulWorkspace ws;
  const Matrix w{DType::F32, 3, 0, nullptr};
  std::vector<float> y(6, 1.0f);
  matmul(w, nullptr, 2, y.data(), pool, ws);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

// Quantized weights reduce in the same single chain everywhere (an exact
// integer sum per block, then one fma per block), so every SIMD path must
// equal the scalar reference bit for bit — whether the weights come repacked
// at load time or are repacked per call. Weight bytes include -128 (Q8_0's
// extreme that quantize_row never writes but a file may hold) and every nibble.
TEST(Matmul, QuantizedPathsEqualReferenceBitForBit) {
  ThreadPool pool(2);
  MatmulWorkspace ws;
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    for (int64_t rows : {int64_t{1}, int64_t{13}, int64_t{16}, int64_t{37}}) {
      for (int64_t cols : {int64_t{32}, int64_t{96}, int64_t{4128}}) {
        Weights w = random_weights(t, rows, cols, 17 + static_cast<uint32_t>(rows));
        std::mt19937 rng(23);
        const size_t rb = row_bytes(t, cols);
        for (int64_t r = 0; r < rows; r += 3) {  // raw random quants in some rows
          for (int64_t b = 0; b < cols / 32; ++b) {
            uint8_t* blk = w.bytes.data() + r * rb + b * (t == DType::Q8_0 ? 34 : 18);
            for (int j = 2; j < (t == DType::Q8_0 ? 34 : 18); ++j)
              blk[j] = static_cast<uint8_t>(rng());
            if (t == DType::Q8_0) blk[2] = 0x80;  // -128
          }
        }
        AlignedBytes storage;
        const Matrix packed = pack_matrix(w.m, storage);
        ASSERT_NE(packed.packed, nullptr);
        for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{8}}) {
          const std::vector<float> x = random_x(n, cols, 29);
          std::vector<float> ref(static_cast<size_t>(n * rows));
          matmul_reference(w.m, x.data(), n, ref.data());
          for (MatmulIsa isa : isas()) {
            for (const Matrix* m : {static_cast<const Matrix*>(&w.m), &packed}) {
              std::vector<float> y(ref.size(), -1.0f);
              matmul(isa, *m, x.data(), n, y.data(), pool, ws);
              ASSERT_EQ(0, std::memcmp(y.data(), ref.data(), y.size() * sizeof(float)))
                  << label(isa, t, cols) << " rows=" << rows << " n=" << n
                  << (m == &packed ? " packed" : " repacked per call");
            }
          }
        }
      }
    }
  }
}

// Prefill batches long enough that the float kernels split the activation
// rows into several blocks and the columns into several chunks (with a ragged
// last chunk): every row must still equal the row computed alone (the decode
// path, which neither blocks nor chunks), on both ISAs, and stay within the
// summation bound of the scalar reference.
TEST(Matmul, LongFloatBatchesMatchRowsComputedAlone) {
  ThreadPool one(1), two(2);
  MatmulWorkspace ws;
  const int64_t rows = 14;
  const int64_t n = 137;
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t cols : {int64_t{1100}, int64_t{5000}}) {
      const Weights w = random_weights(t, rows, cols, 21);
      const std::vector<float> x = random_x(n, cols, 22);
      std::vector<float> ref(static_cast<size_t>(n * rows));
      matmul_reference(w.m, x.data(), n, ref.data());
      std::vector<float> first;
      for (MatmulIsa isa : isas()) {
        std::vector<float> y(ref.size(), -1.0f);
        matmul(isa, w.m, x.data(), n, y.data(), two, ws);
        for (int64_t r = 0; r < n; ++r) {
          std::vector<float> alone(static_cast<size_t>(rows));
          matmul(isa, w.m, x.data() + r * cols, 1, alone.data(), one, ws);
          ASSERT_EQ(0, std::memcmp(alone.data(), y.data() + r * rows, rows * sizeof(float)))
              << label(isa, t, cols) << " row " << r;
          for (int64_t o = 0; o < rows; ++o) {
            const double bound = 2.0 * (static_cast<double>(cols) + 5.0) * std::ldexp(1.0, -24) *
                                 abs_sum(w.m, x.data() + r * cols, o);
            ASSERT_LE(std::fabs(static_cast<double>(y[r * rows + o]) - ref[r * rows + o]), bound)
                << label(isa, t, cols) << " row " << r << " out " << o;
          }
        }
        if (first.empty()) {
          first = y;
        } else {
          ASSERT_EQ(0, std::memcmp(first.data(), y.data(), y.size() * sizeof(float)))
              << label(isa, t, cols) << " differs from the first ISA";
        }
      }
    }
  }
}

TEST(Matmul, PackRejectsFloatAndBadShapes) {
  EXPECT_THROW(packed_layout(DType::F16, 16, 32), Error);
  EXPECT_THROW(packed_layout(DType::Q8_0, 16, 40), Error);
  EXPECT_THROW(packed_layout(DType::Q4_0, 0, 32), Error);
  // 17 rows, 3 blocks: two groups, each 3 × (512 + 32) bytes rounded up to 64.
  const PackedLayout l = packed_layout(DType::Q8_0, 17, 96);
  EXPECT_EQ(l.groups, 2);
  EXPECT_EQ(l.group_stride, 1664u);
  EXPECT_EQ(l.scales_offset(), 1536u);
}

}  // namespace
}  // namespace nucleus::kernels
