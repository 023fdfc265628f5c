// AVX2+FMA+F16C matmul kernels (the baseline every supported CPU has). The
// 16 lane sums of matmul_isa.h live in two 8-wide registers per output.
// Decode and short batches (n < kPanelMinN): 1×2 tiles (one weight row, as
// in matmul_avx512.cpp: one sequential weight stream), weights converted in
// registers as they stream in. Prefill: converted weight panels reused over
// a block of activation rows (panel_rows below, as in matmul_avx512.cpp).
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
// operands must fit the 16 ymm registers; 2×3 already spilled. One weight
// row keeps the weight reads one sequential stream (matmul_avx512.cpp).
constexpr int kR = 1;
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

// ---- prefill (n >= kPanelMinN): the design of matmul_avx512.cpp with each
// output's 16 lanes in two ymm registers. A panel of kPR weight rows × kKc
// columns is converted to F32 once into an L1-resident stack buffer and then
// serves every activation row of a block (sized to kXBlockBytes, kept in
// L2), kPR × kPC outputs at a time. Between column chunks the accumulators
// go to a stack buffer and come back unchanged, so every lane still adds its
// products in the order i = j, j+16, ... and the results match the decode
// tiles above (and AVX-512) bit for bit, whatever n, the block sizes or the
// task split.
// 3×2 outputs = 12 accumulators + 2 activation registers + 1 weight: the
// 16 ymm registers without spills (measured against 2×3, 2×4, 4×1).
constexpr int kPR = 3;    // weight rows per register tile
constexpr int kPC = 2;    // activation rows per register tile
constexpr int kKc = 512;  // columns per chunk (a multiple of 16)
constexpr int kNc = 128;  // most activation rows per block (a multiple of kPC)
// Activation block budget (kept in L2; only speed depends on it).
constexpr int64_t kXBlockBytes = int64_t{1} << 20;
// Below this many activation rows the panel conversion costs more than it
// saves (the threshold of matmul_avx512.cpp).
constexpr int kPanelMinN = 16;

// Lane masks for _mm256_maskload_ps: the first `left` of 16 lanes.
inline void tail_masks(int64_t left, __m256i& m0, __m256i& m1) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i n = _mm256_set1_epi32(static_cast<int>(std::min<int64_t>(left, 16)));
  m0 = _mm256_cmpgt_epi32(n, idx);
  m1 = _mm256_cmpgt_epi32(n, _mm256_add_epi32(idx, _mm256_set1_epi32(8)));
}

// Converts weight rows [o, o + nr) × columns [k0, k0 + kc) to F32 rows of
// kKc floats; columns past kc (to the next multiple of 16) and rows past nr
// are zero.
template <class L>
void convert_panel(const MatmulArgs& a, int64_t o, int nr, int64_t k0, int64_t kc, float* panel) {
  const int64_t full = kc / 16 * 16;
  for (int r = 0; r < kPR; ++r) {
    float* dst = panel + r * kKc;
    if (r >= nr) {
      for (int64_t i = 0; i < kc; i += 8) _mm256_store_ps(dst + i, _mm256_setzero_ps());
      continue;
    }
    const uint8_t* row = a.w->data + static_cast<size_t>(o + r) * a.w_stride;
    for (int64_t i = 0; i < full; i += 16) {
      _mm256_store_ps(dst + i, L::load8(row, k0 + i));
      _mm256_store_ps(dst + i + 8, L::load8(row, k0 + i + 8));
    }
    if (full < kc) {
      alignas(32) uint8_t t[64] = {};
      std::memcpy(t, row + (k0 + full) * L::kSize, static_cast<size_t>(kc - full) * L::kSize);
      _mm256_store_ps(dst + full, L::load8(t, 0));
      _mm256_store_ps(dst + full + 8, L::load8(t, 8));
    }
  }
}

// One tile of R weight rows × kPC activation rows over one column chunk.
template <int R>
void panel_tile(const float* panel, const float* const* xr, const float* const* xnext, int64_t kc,
                bool first, bool last, float* acc_mem, float* const* yc, int nr, int ncv) {
  __m256 acc[kPC][R][2];
  if (first) {
#pragma GCC unroll 32
    for (int c = 0; c < kPC; ++c)
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) acc[c][r][0] = acc[c][r][1] = _mm256_setzero_ps();
  } else {
#pragma GCC unroll 32
    for (int c = 0; c < kPC; ++c)
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h)
          acc[c][r][h] = _mm256_load_ps(acc_mem + ((c * R + r) * 2 + h) * 8);
  }
  int64_t i = 0;
  for (; i + 16 <= kc; i += 16) {
#pragma GCC unroll 32
    for (int c = 0; c < kPC; ++c)
      _mm_prefetch(reinterpret_cast<const char*>(xnext[c] + i), _MM_HINT_T0);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256 xv[kPC];
#pragma GCC unroll 32
      for (int c = 0; c < kPC; ++c) xv[c] = _mm256_loadu_ps(xr[c] + i + 8 * h);
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) {
        const __m256 wv = _mm256_load_ps(panel + r * kKc + i + 8 * h);
#pragma GCC unroll 32
        for (int c = 0; c < kPC; ++c) acc[c][r][h] = _mm256_fmadd_ps(wv, xv[c], acc[c][r][h]);
      }
    }
  }
  if (i < kc) {
    // Masked lanes read as zero, as do the panel's: 0·0 leaves each lane as is.
    __m256i m[2];
    tail_masks(kc - i, m[0], m[1]);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m256 xv[kPC];
#pragma GCC unroll 32
      for (int c = 0; c < kPC; ++c) xv[c] = _mm256_maskload_ps(xr[c] + i + 8 * h, m[h]);
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) {
        const __m256 wv = _mm256_load_ps(panel + r * kKc + i + 8 * h);
#pragma GCC unroll 32
        for (int c = 0; c < kPC; ++c) acc[c][r][h] = _mm256_fmadd_ps(wv, xv[c], acc[c][r][h]);
      }
    }
  }
  if (last) {
#pragma GCC unroll 32
    for (int c = 0; c < kPC; ++c)
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r)
        if (c < ncv && r < nr) yc[c][r] = hsum16(acc[c][r][0], acc[c][r][1]);
  } else {
#pragma GCC unroll 32
    for (int c = 0; c < kPC; ++c)
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h)
          _mm256_store_ps(acc_mem + ((c * R + r) * 2 + h) * 8, acc[c][r][h]);
  }
}

template <class L>
void panel_rows(const MatmulArgs& a, int64_t o0, int64_t o1) {
  const int64_t cols = a.w->cols;
  const int64_t rows = a.w->rows;
  const int64_t nc_fit = kXBlockBytes / (cols * static_cast<int64_t>(sizeof(float))) / kPC * kPC;
  const int64_t nc = std::clamp<int64_t>(nc_fit, kPC, kNc / kPC * kPC);
  alignas(32) float panel[kPR * kKc];
  alignas(32) float acc_mem[kNc * kPR * 16];
  for (int64_t n0 = 0; n0 < a.n; n0 += nc) {
    const int64_t nn = std::min<int64_t>(nc, a.n - n0);
    for (int64_t o = o0; o < o1; o += kPR) {
      const int nr = static_cast<int>(std::min<int64_t>(kPR, o1 - o));
      for (int64_t k0 = 0; k0 < cols; k0 += kKc) {
        const int64_t kc = std::min<int64_t>(kKc, cols - k0);
        const bool first = k0 == 0, last = k0 + kc == cols;
        convert_panel<L>(a, o, nr, k0, kc, panel);
        // The next panel's weights: fetched into L2 a few lines per tile.
        int64_t next_o = o, next_k0 = k0 + kKc;
        if (next_k0 >= cols) next_o = o + kPR, next_k0 = 0;
        const int64_t next_nr = std::min<int64_t>(kPR, o1 - next_o);
        const int64_t next_bytes = std::min<int64_t>(kKc, cols - next_k0) * L::kSize;
        const int64_t lines_per_row = (next_bytes + 63) / 64;
        const int64_t lines = next_nr > 0 ? next_nr * lines_per_row : 0;
        const int64_t tiles = (nn + kPC - 1) / kPC;
        const int64_t lines_per_tile = (lines + tiles - 1) / tiles;
        const uint8_t* pf =
            lines > 0 ? a.w->data + static_cast<size_t>(next_o) * a.w_stride + next_k0 * L::kSize
                      : a.w->data;
        int64_t line = 0, in_row = 0;
        for (int64_t c0 = 0; c0 < nn; c0 += kPC) {
          for (const int64_t end = std::min(lines, line + lines_per_tile); line < end; ++line) {
            _mm_prefetch(reinterpret_cast<const char*>(pf) + in_row * 64, _MM_HINT_T1);
            if (++in_row == lines_per_row) in_row = 0, pf += a.w_stride;
          }
          const int ncv = static_cast<int>(std::min<int64_t>(kPC, nn - c0));
          const float* xr[kPC];
          const float* xnext[kPC];
          float* yc[kPC];
          // Missing activation rows repeat the last real one and are not stored.
          for (int c = 0; c < kPC; ++c) {
            const int64_t row = n0 + c0 + std::min(c, ncv - 1);
            xr[c] = a.x + row * cols + k0;
            yc[c] = a.y + row * rows + o;
            xnext[c] = a.x + std::min(row + kPC, n0 + nn - 1) * cols + k0;
          }
          float* const am = acc_mem + c0 * kPR * 16;
          panel_tile<kPR>(panel, xr, xnext, kc, first, last, am, yc, nr, ncv);
        }
      }
    }
  }
}

template <class L>
void rows_impl(const MatmulArgs& a, int64_t o0, int64_t o1) {
  if (a.n >= kPanelMinN) return panel_rows<L>(a, o0, o1);
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
    default:
      return;  // matmul_qgroups_* (matmul_quant_*.cpp)
  }
}

}  // namespace nucleus::kernels::detail
