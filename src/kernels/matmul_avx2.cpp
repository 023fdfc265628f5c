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

// One 32-block of weights as signed int8 values, and its scale.
struct LoadQ8 {
  static __m256i load(const uint8_t* row, int64_t b, float& d) {
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
    d = _cvtsh_ss(blk->d);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qs));
  }
};
struct LoadQ4 {
  static __m256i load(const uint8_t* row, int64_t b, float& d) {
    const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
    d = _cvtsh_ss(blk->d);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs));
    const __m256i nib =
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
    return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
  }
};

// Adds block b into acc (the even- or odd-block lane set of each output).
template <class L, int R, int C>
inline void block_q(const uint8_t* const* wr, const uint8_t* const* xq, const float* const* xd,
                    int64_t b, __m256 (&acc)[R][C]) {
  const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float dws;
    const __m256i wv = L::load(wr[r], b, dws);
    const __m256 dw = _mm256_set1_ps(dws);
    const __m256i absw = _mm256_abs_epi8(wv);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      // |w| · (x with w's sign): u8 × s8 pairs fit int16 (|w| ≤ 128, |x| ≤ 127).
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[c] + b * 32));
      const __m256i p16 = _mm256_maddubs_epi16(absw, _mm256_sign_epi8(xv, wv));
      const __m256i p32 = _mm256_madd_epi16(p16, ones);
      const __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps(xd[c] + b * 8));
      acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, acc[r][c]);
    }
  }
}

template <class L, int R, int C>
void tile_quant(const MatmulArgs& a, int64_t o, int64_t c0) {
  const int64_t nb = a.w->cols / 32;
  const int64_t nbp = act_blocks_padded(a.w->cols);
  const uint8_t* wr[R];
  const uint8_t* xq[C];
  const float* xd[C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) wr[r] = a.w->data + static_cast<size_t>(o + r) * a.w_stride;
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    xq[c] = a.act + static_cast<size_t>(c0 + c) * a.act_stride;
    xd[c] = reinterpret_cast<const float*>(xq[c] + nbp * 32);
  }
  __m256 even[R][C], odd[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) even[r][c] = odd[r][c] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    block_q<L, R, C>(wr, xq, xd, b, even);
    block_q<L, R, C>(wr, xq, xd, b + 1, odd);
  }
  if (b < nb) block_q<L, R, C>(wr, xq, xd, b, even);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) a.y[(c0 + c) * a.w->rows + o + r] = hsum16(even[r][c], odd[r][c]);
}

using TileFn = void (*)(const MatmulArgs&, int64_t, int64_t);

// table[r-1][c-1] = the tile kernel for r weight rows × c activation rows.
template <class L, bool Quant>
struct Tiles {
  template <int R, int C>
  static void one(const MatmulArgs& a, int64_t o, int64_t c0) {
    if constexpr (Quant) {
      tile_quant<L, R, C>(a, o, c0);
    } else {
      tile_float<L, R, C>(a, o, c0);
    }
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

template <class L, bool Quant>
void rows_impl(const MatmulArgs& a, int64_t o0, int64_t o1) {
  // Each weight row group stays in cache while every activation tile passes it.
  for (int64_t o = o0; o < o1; o += kR) {
    const int r = static_cast<int>(std::min<int64_t>(kR, o1 - o));
    for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
      const int c = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
      Tiles<L, Quant>::kTable[r - 1][c - 1](a, o, c0);
    }
  }
}

}  // namespace

void matmul_rows_avx2(const MatmulArgs& a, int64_t o0, int64_t o1) {
  switch (a.w->type) {
    case DType::F32:
      return rows_impl<LoadF32, false>(a, o0, o1);
    case DType::F16:
      return rows_impl<LoadF16, false>(a, o0, o1);
    case DType::BF16:
      return rows_impl<LoadBF16, false>(a, o0, o1);
    case DType::Q8_0:
      return rows_impl<LoadQ8, true>(a, o0, o1);
    case DType::Q4_0:
      return rows_impl<LoadQ4, true>(a, o0, o1);
  }
}

}  // namespace nucleus::kernels::detail
