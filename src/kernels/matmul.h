#pragma once
// Matrix products against stored weights: Y[n][rows] = X[n][cols] · Wᵀ.
// One call serves decode (n = 1, matrix × vector) and prefill (n > 1, matrix
// × matrix). Batch invariance: every output element is reduced in an order
// that depends only on `cols` — never on n, on the thread count or on which
// thread ran it — so a row's result is bit-identical however it is batched.
#include <cstdint>
#include <vector>

#include "formats/tensor.h"
#include "util/thread_pool.h"

namespace nucleus::kernels {

struct Matrix {
  DType type = DType::F32;
  int64_t rows = 0;               // output features
  int64_t cols = 0;               // input features (row length)
  const uint8_t* data = nullptr;  // rows × row_bytes(type, cols), row-major
  // Q8_0/Q4_0 only: the same weights in quant_pack.h's interleaved layout
  // (made once at load time). Without it matmul repacks into the workspace
  // on every call — correct, but meant only for one-off uses and tests.
  const uint8_t* packed = nullptr;
};

// Scratch memory owned by the caller and reused across calls, so the decode
// loop allocates nothing once it has seen its largest batch.
struct MatmulWorkspace {
  std::vector<uint8_t> bytes;
  uint8_t* reserve(size_t n) {
    if (bytes.size() < n) bytes.resize(n);
    return bytes.data();
  }
};

// Uses the best instruction set this CPU offers (matmul_default_isa()).
// Throws Error for an unsupported type, a quantized row length that is not a
// multiple of 32, or missing data. Allocates nothing once ws has grown to the
// largest n seen (ws holds the quantized activations for Q8_0/Q4_0 weights,
// and their repacked copy when w.packed is null).
void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            MatmulWorkspace& ws);

// The SIMD code paths, exposed so tests and benchmarks can run each one on a
// machine that has both. Both give bit-identical results (see matmul_isa.h).
enum class MatmulIsa { kAvx2, kAvx512 };
const char* matmul_isa_name(MatmulIsa isa);
// kAvx2 needs AVX2+FMA+F16C; kAvx512 needs AVX-512 F/BW/VL/DQ/VNNI (and is
// off when NUCLEUS_NO_AVX512=1 was set at process start).
bool matmul_isa_supported(MatmulIsa isa);
MatmulIsa matmul_default_isa();
// Throws Error when the CPU lacks isa.
void matmul(MatmulIsa isa, const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            MatmulWorkspace& ws);

// The scalar reference every SIMD path is tested against.
void matmul_reference(const Matrix& w, const float* x, int64_t n, float* y);

}  // namespace nucleus::kernels
