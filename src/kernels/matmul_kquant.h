#pragma once
// Internal to src/kernels/: matrix products against the types of kquant.h.
//
// Activations: each row is quantized to int8 per block of A elements, as
// llama.cpp does for these weight types, so the integer sums are the same as
// llama.cpp's and near-ties of a flat distribution resolve alike:
//  * A = 256 (super-block types), ggml's Q8_K: m = the element of largest
//    magnitude (with its sign), q = min(127, round-half-even(x·(−127/m))),
//    dx = 1/(−127/m) as a float;
//  * A = 32 (legacy types), ggml's Q8_0/Q8_1: d = max|x|/127,
//    q = round-half-away(x/d), dx = d rounded to f16.
// Plus the int16 sum of q over every 16 elements.
// Row layout (act_row_bytes): q[cols] int8, dx[cols/A] float, bs[cols/16] int16.
//
// The fixed reduction of one output element (weights in IntBlock form):
//  * super-block types, for each super-block s in order:
//      isum = Σ_k sc_k·(Σ_{i∈k} u_i·q_i − offset·bs_k)   (exact integer)
//      msum = Σ_k mn_k·bs_k                              (exact integer)
//      acc = fma(float(isum), d·dx, acc); with mins also
//      acc = fma(float(−msum), dmin·dx, acc)
//  * legacy types, for each 32-block b in order:
//      isum = Σ u_i·q_i − offset·bs_b; acc = fma(float(isum), d_b·dx_b, acc);
//      with a min also acc = fma(float(bs_b), m_b·dx_b, acc)
// starting from acc = 0. Integer sums are exact in any order, so every ISA
// forms them its own way; the float chain is the same everywhere and one
// output element is never split, so results are bit-identical for any batch,
// thread count, ISA, and prefill vs decode.
#include <cstddef>
#include <cstdint>

#include "kernels/kquant.h"
#include "kernels/matmul.h"

namespace nucleus::kernels::detail {

size_t kq_act_row_bytes(DType t, int64_t cols);
void kq_quantize_activation(DType t, const float* x, int64_t cols, uint8_t* out);

struct KqArgs {
  const Matrix* w = nullptr;
  size_t w_stride = 0;
  const uint8_t* act = nullptr;
  size_t act_stride = 0;
  int64_t n = 0;
  float* y = nullptr;
};

struct KqActView {
  const int8_t* q;
  const float* dx;
  const int16_t* bs;
};
inline KqActView kq_act_view(const uint8_t* row, int64_t cols, int act_block) {
  return {reinterpret_cast<const int8_t*>(row), reinterpret_cast<const float*>(row + cols),
          reinterpret_cast<const int16_t*>(row + cols + 4 * (cols / act_block))};
}

// Scalar reference of one output element (the definition above).
float kq_dot_reference(DType t, const uint8_t* wrow, const uint8_t* act, int64_t cols);

// Weight rows [o0, o1) against every activation row.
void kq_rows_avx2(const KqArgs& a, int64_t o0, int64_t o1);
void kq_rows_avx512(const KqArgs& a, int64_t o0, int64_t o1);

// The whole product (called by matmul() for kquant types).
void matmul_kquant(bool avx512, const Matrix& w, const float* x, int64_t n, float* y,
                   ThreadPool& pool, MatmulWorkspace& ws);
void matmul_kquant_reference(const Matrix& w, const float* x, int64_t n, float* y);

}  // namespace nucleus::kernels::detail
