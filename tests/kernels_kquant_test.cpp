// K-quant, i-quant and legacy types: dequantization equals gguf-py's
// reference arrays bit for bit (tests/data/kquant, see its README); the
// integer matmul reference agrees with dequantize-then-multiply; every SIMD
// path equals the reference bit for bit and is invariant to batch, threads,
// ISA; our quantizers are as good as llama.cpp's on the same weights; bad
// blocks give errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "formats/gguf.h"
#include "kernels/dtype.h"
#include "kernels/kquant.h"
#include "kernels/matmul.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace nucleus::kernels {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/kquant/";

const DType kTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q2_K,
                        DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,   DType::IQ4_XS};

// Reads a float32 C-order .npy of shape (rows, cols).
std::vector<float> read_npy(const std::string& path, int64_t& rows, int64_t& cols) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  char magic[8];
  in.read(magic, 8);
  uint16_t hl = 0;
  in.read(reinterpret_cast<char*>(&hl), 2);
  std::string header(hl, '\0');
  in.read(header.data(), hl);
  EXPECT_NE(header.find("'<f4'"), std::string::npos) << header;
  const size_t p = header.find("'shape': (");
  rows = std::stoll(header.substr(p + 10));
  cols = std::stoll(header.substr(header.find(',', p + 10) + 1));
  std::vector<float> v(static_cast<size_t>(rows * cols));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  EXPECT_TRUE(in.good()) << path;
  return v;
}

struct RefCase {
  const char* file;  // model file stem
  const char* type;  // upper-case type in the .npy name
};

TEST(Kquant, DequantizationEqualsGgufPyBitForBit) {
  const RefCase cases[] = {{"iq4_nl", "IQ4_NL"}, {"iq4_xs", "IQ4_XS"}, {"q2_k", "Q2_K"},
                           {"q3_k_m", "Q3_K"},   {"q3_k_s", "Q3_K"},   {"q4_0", "Q4_0"},
                           {"q4_1", "Q4_1"},     {"q4_k_m", "Q4_K"},   {"q4_k_s", "Q4_K"},
                           {"q5_0", "Q5_0"},     {"q5_1", "Q5_1"},     {"q5_k_m", "Q5_K"},
                           {"q5_k_s", "Q5_K"},   {"q6_k", "Q6_K"},     {"q8_0", "Q8_0"}};
  for (const RefCase& c : cases) {
    const std::string stem = kData + "random-d256." + c.file;
    int64_t rows = 0, cols = 0;
    const std::vector<float> ref =
        read_npy(stem + ".blk.0.attn_q." + c.type + ".rows64.npy", rows, cols);
    GgufFile g(stem + ".gguf");
    const GgufTensorInfo* info = nullptr;
    for (const auto& t : g.tensor_infos())
      if (t.name == "blk.0.attn_q.weight") info = &t;
    ASSERT_NE(info, nullptr);
    const TensorView v = g.view(*info);
    std::string name = dtype_name(v.type);
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(name, c.type) << c.file;
    ASSERT_EQ(v.cols(), cols);
    std::vector<float> got(static_cast<size_t>(cols));
    int64_t mismatches = 0;
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(v.type, v.data + r * row_bytes(v.type, cols), got.data(), cols);
      mismatches += std::memcmp(got.data(), ref.data() + r * cols, cols * 4) != 0;
    }
    EXPECT_EQ(mismatches, 0) << c.file << ": rows differing from gguf-py";
  }
}

// Random blocks: every bit pattern of the quants, sane finite f16 scales.
std::vector<uint8_t> random_blocks(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t rb = row_bytes(t, cols);
  std::vector<uint8_t> b(rb * static_cast<size_t>(rows));
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  const DTypeInfo& info = dtype_info(t);
  std::vector<int> f16_at;
  switch (t) {
    case DType::Q2_K:
      f16_at = {80, 82};
      break;
    case DType::Q3_K:
      f16_at = {108};
      break;
    case DType::Q6_K:
      f16_at = {208};
      break;
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
      f16_at = {0, 2};
      break;
    default:
      f16_at = {0};
  }
  std::uniform_real_distribution<float> scale(-0.01f, 0.01f);
  for (size_t blk = 0; blk < b.size() / info.block_bytes; ++blk)
    for (int off : f16_at) {
      const uint16_t h = fp32_to_fp16(scale(rng));
      std::memcpy(&b[blk * info.block_bytes + off], &h, 2);
    }
  return b;
}

std::vector<float> random_x(int64_t n, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (auto& v : x) v = dist(rng);
  return x;
}

std::vector<MatmulIsa> isas() {
  std::vector<MatmulIsa> v;
  for (MatmulIsa i : {MatmulIsa::kAvx2, MatmulIsa::kAvx512})
    if (matmul_isa_supported(i)) v.push_back(i);
  return v;
}

// The integer formulation computes Σ w·x with w as dequantized: only the
// activation rounding (≤ dx/2 per element) separates the two.
TEST(Kquant, ReferenceMatmulAgreesWithDequantizedProduct) {
  for (DType t : kTypes) {
    const int64_t rows = 5, cols = 512;
    auto bytes = random_blocks(t, rows, cols, 11);
    const auto x = random_x(1, cols, 12);
    Matrix w{t, rows, cols, bytes.data()};
    std::vector<float> y(rows);
    matmul_reference(w, x.data(), 1, y.data());
    std::vector<float> wf(cols);
    const int ab = is_super_block_type(t) ? 256 : 32;
    for (int64_t o = 0; o < rows; ++o) {
      dequantize_row(t, bytes.data() + o * row_bytes(t, cols), wf.data(), cols);
      double exact = 0, bound = 0;
      for (int64_t b = 0; b < cols / ab; ++b) {
        float amax = 0;
        for (int i = 0; i < ab; ++i) amax = std::max(amax, std::fabs(x[b * ab + i]));
        for (int i = 0; i < ab; ++i) {
          exact += static_cast<double>(wf[b * ab + i]) * x[b * ab + i];
          bound += std::fabs(wf[b * ab + i]) * (amax / 127.0 * 0.5001 + 1e-6 * amax);
        }
      }
      EXPECT_NEAR(y[o], exact, bound + 1e-5) << dtype_name(t) << " row " << o;
    }
  }
}

TEST(Kquant, SimdEqualsReferenceAndIsBatchThreadIsaInvariant) {
  ThreadPool one(1), two(2);
  for (DType t : kTypes) {
    for (int64_t cols : {256, 768}) {
      if (!is_super_block_type(t) && cols == 768) cols = 288;  // a partial group of 8 blocks
      const int64_t rows = 37, n = 7;
      auto bytes = random_blocks(t, rows, cols, 21 + static_cast<uint32_t>(cols));
      const auto x = random_x(n, cols, 22);
      Matrix w{t, rows, cols, bytes.data()};
      std::vector<float> ref(n * rows);
      matmul_reference(w, x.data(), n, ref.data());
      for (MatmulIsa isa : isas()) {
        for (ThreadPool* pool : {&one, &two}) {
          MatmulWorkspace ws;
          std::vector<float> y(n * rows);
          matmul(isa, w, x.data(), n, y.data(), *pool, ws);
          EXPECT_EQ(std::memcmp(y.data(), ref.data(), y.size() * 4), 0)
              << dtype_name(t) << " cols " << cols << " " << matmul_isa_name(isa) << " threads "
              << pool->size();
          for (int64_t r = 0; r < n; ++r) {  // decode: one row at a time
            std::vector<float> y1(rows);
            matmul(isa, w, x.data() + r * cols, 1, y1.data(), *pool, ws);
            EXPECT_EQ(std::memcmp(y1.data(), ref.data() + r * rows, rows * 4), 0)
                << dtype_name(t) << " row " << r << " " << matmul_isa_name(isa);
          }
        }
      }
    }
  }
}

TEST(Kquant, AllocatesNothingOnceWarm) {
  ThreadPool pool(2);
  MatmulWorkspace ws;
  for (DType t : kTypes) {
    auto bytes = random_blocks(t, 64, 512, 3);
    const Matrix w{t, 64, 512, bytes.data()};
    const auto x = random_x(8, 512, 4);
    std::vector<float> y(8 * 64);
    matmul(w, x.data(), 8, y.data(), pool, ws);  // grows ws once
    const long before = testutil::allocations();
    for (int64_t n : {1, 8, 3}) matmul(w, x.data(), n, y.data(), pool, ws);
    EXPECT_EQ(testutil::allocations(), before) << dtype_name(t);
  }
}

TEST(Kquant, RejectsRowLengthsThatAreNotWholeBlocks) {
  ThreadPool pool(1);
  MatmulWorkspace ws;
  std::vector<uint8_t> bytes(4096);
  std::vector<float> x(512), y(4);
  for (DType t : kTypes) {
    const int64_t cols = dtype_info(t).block_elems == 256 ? 288 : 48;
    Matrix w{t, 2, cols, bytes.data()};
    EXPECT_THROW(matmul(w, x.data(), 1, y.data(), pool, ws), Error) << dtype_name(t);
    EXPECT_THROW(dequantize_row(t, bytes.data(), x.data(), cols), Error) << dtype_name(t);
  }
}

// Our Q4_K / Q5_K / Q6_K (and legacy) quantizers against llama.cpp's
// llama-quantize on the same F32 weights: squared error no more than 5 %
// above llama.cpp's (both without an importance matrix).
TEST(Kquant, QuantizersAreAsAccurateAsLlamaCpp) {
  GgufFile f32(kData + "random-d256.f32.gguf");
  const struct {
    const char* file;
    DType type;
  } cases[] = {{"q4_k_s", DType::Q4_K}, {"q5_k_s", DType::Q5_K}, {"q6_k", DType::Q6_K},
               {"q4_1", DType::Q4_1},   {"q5_0", DType::Q5_0},   {"q5_1", DType::Q5_1}};
  auto find = [](const GgufFile& g, const std::string& name) {
    for (const auto& t : g.tensor_infos())
      if (t.name == name) return g.view(t);
    throw Error("no tensor " + name);
  };
  const TensorView src = find(f32, "blk.0.attn_q.weight");
  const int64_t cols = src.cols(), rows = src.rows();
  const std::vector<float> x(reinterpret_cast<const float*>(src.data),
                             reinterpret_cast<const float*>(src.data) + rows * cols);
  for (const auto& c : cases) {
    GgufFile q(kData + "random-d256." + c.file + ".gguf");
    const TensorView theirs = find(q, "blk.0.attn_q.weight");
    ASSERT_EQ(theirs.type, c.type);
    std::vector<uint8_t> mine(row_bytes(c.type, cols));
    std::vector<float> a(cols), b(cols);
    double err_mine = 0, err_theirs = 0;
    for (int64_t r = 0; r < rows; ++r) {
      quantize_row(c.type, x.data() + r * cols, mine.data(), cols);
      dequantize_row(c.type, mine.data(), a.data(), cols);
      dequantize_row(c.type, theirs.data + r * row_bytes(c.type, cols), b.data(), cols);
      for (int64_t i = 0; i < cols; ++i) {
        err_mine += std::pow(a[i] - x[r * cols + i], 2);
        err_theirs += std::pow(b[i] - x[r * cols + i], 2);
      }
    }
    std::printf("%-5s squared error: nucleus %.6g, llama.cpp %.6g (ratio %.3f)\n",
                dtype_name(c.type), err_mine, err_theirs, err_mine / err_theirs);
    EXPECT_LE(err_mine, 1.05 * err_theirs) << dtype_name(c.type);
  }
}

TEST(Kquant, DetectsNonFiniteScales) {
  for (DType t : kTypes) {
    auto bytes = random_blocks(t, 1, 256, 5);
    EXPECT_TRUE(kquant_scales_finite(t, bytes.data(), 256)) << dtype_name(t);
    // The first f16 field of the last block set to +Inf, then NaN.
    const DTypeInfo& info = dtype_info(t);
    const size_t last = bytes.size() - info.block_bytes;
    const int off = t == DType::Q2_K ? 80 : t == DType::Q3_K ? 108 : t == DType::Q6_K ? 208 : 0;
    for (uint16_t bad : {uint16_t{0x7c00}, uint16_t{0x7e00}}) {
      std::memcpy(&bytes[last + off], &bad, 2);
      EXPECT_FALSE(kquant_scales_finite(t, bytes.data(), 256)) << dtype_name(t);
    }
  }
}

}  // namespace
}  // namespace nucleus::kernels
