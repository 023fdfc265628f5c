// AVX-512 (F/BW/VL/DQ + VNNI) matmul kernels for float weights, entered only
// after matmul_isa_supported(kAvx512). The 16 lane sums of matmul_isa.h are
// one zmm register per output. (Quantized weights: matmul_quant_avx512.cpp.)
// GCC 12's AVX-512 intrinsic headers start some results from
// _mm512_undefined_*(), which trips -Wuninitialized after inlining.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "kernels/dtype.h"
#include "kernels/matmul_isa.h"

namespace nucleus::kernels::detail {
namespace {

// Tile: kR weight rows × kC activation rows = 16 accumulators of 32 registers.
constexpr int kR = 4;
constexpr int kC = 4;

inline float hsum16(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Sixteen weights starting at element i as floats; masked lanes read as zero.
struct LoadF32 {
  static __m512 load(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static __m512 load(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  }
};
struct LoadBF16 {
  static __m512 load(const uint8_t* row, int64_t i, __mmask16 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};

template <class L, int R, int C>
inline void step16(const uint8_t* const* wr, const float* const* xr, int64_t i, __mmask16 m,
                   __m512 (&acc)[R][C]) {
  __m512 xv[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) xv[c] = _mm512_maskz_loadu_ps(m, xr[c] + i);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 wv = L::load(wr[r], i, m);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
  }
}

template <class L, int R, int C>
void tile_float(const MatmulArgs& a, int64_t o, int64_t c0) {
  const int64_t cols = a.w->cols;
  const uint8_t* wr[R];
  const float* xr[C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) wr[r] = a.w->data + static_cast<size_t>(o + r) * a.w_stride;
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) xr[c] = a.x + (c0 + c) * cols;
  __m512 acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  // One loop for full and partial chunks (a second call site makes GCC keep
  // the accumulators in memory).
  for (int64_t i = 0; i < cols; i += 16) {
    const __mmask16 m =
        cols - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (cols - i)) - 1);
    step16<L, R, C>(wr, xr, i, m, acc);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) a.y[(c0 + c) * a.w->rows + o + r] = hsum16(acc[r][c]);
}

using TileFn = void (*)(const MatmulArgs&, int64_t, int64_t);

// kTable[r-1][c-1] = the tile kernel for r weight rows × c activation rows.
template <class L>
struct Tiles {
  template <int R, int C>
  static void one(const MatmulArgs& a, int64_t o, int64_t c0) {
    tile_float<L, R, C>(a, o, c0);
  }
  template <int R, int... Cs>
  static constexpr auto row(std::integer_sequence<int, Cs...>) {
    return std::array<TileFn, sizeof...(Cs)>{&one<R, Cs + 1>...};
  }
  template <int... Rs>
  static constexpr auto table(std::integer_sequence<int, Rs...>) {
    return std::array<std::array<TileFn, kC>, sizeof...(Rs)>{
        row<Rs + 1>(std::make_integer_sequence<int, kC>())...};
  }
  static constexpr auto kTable = table(std::make_integer_sequence<int, kR>());
};

template <class L>
void rows_impl(const MatmulArgs& a, int64_t o0, int64_t o1) {
  for (int64_t o = o0; o < o1; o += kR) {
    const int r = static_cast<int>(std::min<int64_t>(kR, o1 - o));
    for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
      const int c = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
      Tiles<L>::kTable[r - 1][c - 1](a, o, c0);
    }
  }
}

}  // namespace

void matmul_rows_avx512(const MatmulArgs& a, int64_t o0, int64_t o1) {
  switch (a.w->type) {
    case DType::F32:
      return rows_impl<LoadF32>(a, o0, o1);
    case DType::F16:
      return rows_impl<LoadF16>(a, o0, o1);
    case DType::BF16:
      return rows_impl<LoadBF16>(a, o0, o1);
    case DType::Q8_0:
    case DType::Q4_0:
      return;  // matmul_qgroups_* (matmul_quant_*.cpp)
  }
}

}  // namespace nucleus::kernels::detail
