// AVX2+FMA+F16C matmul kernels (the baseline every supported CPU has). The
// 16 lane sums of matmul_isa.h live in two 8-wide registers per output.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/dtype.h"
#include "kernels/matmul_isa.h"

namespace nucleus::kernels::detail {
namespace {

// Tile: kR weight rows × kC activation rows. 2·kR·kC accumulators plus the
// operands must fit the 16 ymm registers; 2×3 already spilled.
constexpr int kR = 2;
constexpr int kC = 2;

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
// Lanes 0..7 in lo, 8..15 in hi: the fixed tree of matmul_isa.h.
inline float hsum16(__m256 lo, __m256 hi) {
  return hsum8(_mm256_add_ps(lo, hi));
}

// Eight weights starting at element i, as floats.
struct LoadF32 {
  static constexpr int kSize = 4;
  static __m256 load8(const uint8_t* row, int64_t i) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static constexpr int kSize = 2;
  static __m256 load8(const uint8_t* row, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  }
};
struct LoadBF16 {
  static constexpr int kSize = 2;
  static __m256 load8(const uint8_t* row, int64_t i) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};

template <class L, int R, int C>
inline void step16(const uint8_t* const* wr, const float* const* xr, int64_t i,
                   __m256 (&acc)[R][C][2]) {
#pragma GCC unroll 16
  for (int h = 0; h < 2; ++h) {
    __m256 xv[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) xv[c] = _mm256_loadu_ps(xr[c] + i + 8 * h);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 wv = L::load8(wr[r], i + 8 * h);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c][h] = _mm256_fmadd_ps(wv, xv[c], acc[r][c][h]);
    }
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
  __m256 acc[R][C][2];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= cols; i += 16) step16<L, R, C>(wr, xr, i, acc);
  if (i < cols) {
    // Zero-padded copies of the last partial chunk: 0·0 leaves each lane as is.
    const int64_t rem = cols - i;
    alignas(32) uint8_t wt[R][64] = {};
    alignas(32) float xt[C][16] = {};
    const uint8_t* wp[R];
    const float* xp[C];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      std::memcpy(wt[r], wr[r] + i * L::kSize, static_cast<size_t>(rem) * L::kSize);
      wp[r] = wt[r];
    }
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      std::memcpy(xt[c], xr[c] + i, static_cast<size_t>(rem) * 4);
      xp[c] = xt[c];
    }
    step16<L, R, C>(wp, xp, 0, acc);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c)
      a.y[(c0 + c) * a.w->rows + o + r] = hsum16(acc[r][c][0], acc[r][c][1]);
}

using TileFn = void (*)(const MatmulArgs&, int64_t, int64_t);

// table[r-1][c-1] = the tile kernel for r weight rows × c activation rows.
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
  // Each weight row group stays in cache while every activation tile passes it.
  for (int64_t o = o0; o < o1; o += kR) {
    const int r = static_cast<int>(std::min<int64_t>(kR, o1 - o));
    for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
      const int c = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
      Tiles<L>::kTable[r - 1][c - 1](a, o, c0);
    }
  }
}

}  // namespace

void matmul_rows_avx2(const MatmulArgs& a, int64_t o0, int64_t o1) {
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
