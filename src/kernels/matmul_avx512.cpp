// AVX-512 matmul kernels for float weights (F32, F16, BF16; quantized
// weights: matmul_quant_avx512.cpp), entered only after
// matmul_isa_supported(kAvx512). Each output's 16
// lane sums (matmul_isa.h) live in one zmm register.
//
// Prefill (n >= kPanelMinN): a register tile of kR = 6 weight rows × kC = 4
// activation rows (24 accumulators of the 32 registers; a task's last short
// row group uses a 4-row tile). A weight panel of kR rows × kKc columns is
// converted to F32 once into a stack buffer that stays in L1 and then serves
// every activation row of a block of up to kNc rows, so the F16/BF16
// conversion (two uops on the FMA ports per vector) is paid once per block
// instead of once per kC rows. The activation block (sized to kXBlockBytes)
// stays in L2 across all weight rows of the task; each tile prefetches the
// next tile's activation rows into L1 and spreads prefetches of the next
// panel's weights (from DRAM) over the tiles. Between column chunks the
// accumulators go to a stack buffer and come back unchanged, so every lane
// still adds its products in the order i = j, j+16, ... and results match
// the unblocked definition bit for bit, whatever n, the block sizes or the
// task split.
//
// Decode and short batches (n < kPanelMinN): one weight row × up to 4
// activation rows per tile, weights converted in registers as they stream
// from memory. One row at a time keeps the weight reads a single sequential
// stream: on AMD Zen 5, 4-row tiles (four interleaved streams 4 KiB apart)
// reached 46-51 % of the probed bandwidth in TinyLlama F16 decode, one row
// 76-92 % (1.4-1.9x the tokens/s; one thread 2x), although a single row is
// one FMA dependency chain: the out-of-order window overlaps the next row's
// chain, and the memory system, not the chain, is the limit.
//
// GCC 12's AVX-512 intrinsic headers start some results from
// _mm512_undefined_*(), which trips -Wuninitialized after inlining.
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "kernels/dtype.h"
#include "kernels/matmul_isa.h"

namespace nucleus::kernels::detail {
namespace {

constexpr int kR = 6;     // weight rows per register tile
constexpr int kC = 4;     // activation rows per register tile
constexpr int kKc = 512;  // columns per chunk (a multiple of 16)
constexpr int kNc = 128;  // most activation rows per block (a multiple of kC)
// Activation block budget: half of the 2 MiB private L2 of the development
// machine (Sapphire Rapids class); only speed depends on it.
constexpr int64_t kXBlockBytes = int64_t{1} << 20;
// Below this many activation rows the panel conversion costs more than it
// saves (measured: n = 4 half as fast, n = 16 even).
constexpr int kPanelMinN = 16;

// The fixed tree of matmul_isa.h.
inline float hsum16(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// hsum16 of 16 vectors at once, with exactly the additions of hsum16 (each
// sum pairs the same two values; only whole-vector adds do them).
inline void hsum16x16(const __m512 (&v)[16], float* out) {
  __m512 l1[8], l2[4], l3[2];
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {  // s[j] = l[j] + l[j+8]: [a.s, b.s]
    const __m512 a = v[2 * k], b = v[2 * k + 1];
    l1[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {  // s[j] + s[j+4]: 128-bit lane m holds vector 4k+m
    const __m512 a = l1[2 * k], b = l1[2 * k + 1];
    l2[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
#pragma GCC unroll 2
  for (int k = 0; k < 2; ++k) {  // s[j] + s[j+2]: lane m holds vectors 8k+m, 8k+4+m
    const __m512 a = l2[2 * k], b = l2[2 * k + 1];
    l3[k] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // s[0] + s[1]: element 4m+e holds vector 4e+m.
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                 _mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(order, r));
}

inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << left) - 1);
}

// Sixteen weights starting at element i as floats; masked lanes read as zero.
struct LoadF32 {
  static constexpr int kSize = 4;  // bytes per weight
  static __m512 load(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static constexpr int kSize = 2;  // bytes per weight
  static __m512 load(const uint8_t* row, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * i));
  }
};
struct LoadBF16 {
  static constexpr int kSize = 2;  // bytes per weight
  static __m512 load(const uint8_t* row, int64_t i, __mmask16 m) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, row + 2 * i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};

// ---- short batches: kSmallR weight rows × C <= kSmallC activation rows,
// weights converted in registers as they stream in (one row: see the top).
constexpr int kSmallR = 1;
constexpr int kSmallC = 4;

template <class L, int C>
void small_tile(const MatmulArgs& a, int64_t o, int nr, int64_t c0) {
  const int64_t cols = a.w->cols;
  const uint8_t* wr[kSmallR];
  const float* xr[C];
  // Missing rows repeat the last real one (cached) and are not stored.
#pragma GCC unroll 16
  for (int r = 0; r < kSmallR; ++r)
    wr[r] = a.w->data + static_cast<size_t>(o + std::min(r, nr - 1)) * a.w_stride;
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) xr[c] = a.x + (c0 + c) * cols;
  __m512 acc[kSmallR][C];
#pragma GCC unroll 16
  for (int r = 0; r < kSmallR; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t i = 0; i < cols; i += 16) {
    const __mmask16 m = tail_mask(cols - i);
    __m512 xv[C];
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) xv[c] = _mm512_maskz_loadu_ps(m, xr[c] + i);
#pragma GCC unroll 16
    for (int r = 0; r < kSmallR; ++r) {
      const __m512 wv = L::load(wr[r], i, m);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < kSmallR; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c)
      if (r < nr) a.y[(c0 + c) * a.w->rows + o + r] = hsum16(acc[r][c]);
}

template <class L>
void small_rows(const MatmulArgs& a, int64_t o0, int64_t o1) {
  // Each weight row group stays in cache while every activation tile passes it.
  for (int64_t o = o0; o < o1; o += kSmallR) {
    const int nr = static_cast<int>(std::min<int64_t>(kSmallR, o1 - o));
    for (int64_t c0 = 0; c0 < a.n; c0 += kSmallC) {
      switch (std::min<int64_t>(kSmallC, a.n - c0)) {
        case 1:
          small_tile<L, 1>(a, o, nr, c0);
          break;
        case 2:
          small_tile<L, 2>(a, o, nr, c0);
          break;
        case 3:
          small_tile<L, 3>(a, o, nr, c0);
          break;
        default:
          static_assert(kSmallC == 4);
          small_tile<L, 4>(a, o, nr, c0);
          break;
      }
    }
  }
}

// ---- prefill.

// Converts weight rows [o, o + nr) × columns [k0, k0 + kc) to F32 rows of
// kKc floats; columns past the end of the row and rows past nr are zero.
template <class L>
void convert_panel(const MatmulArgs& a, int64_t o, int nr, int64_t k0, int64_t kc, float* panel) {
  for (int r = 0; r < kR; ++r) {
    float* dst = panel + r * kKc;
    if (r >= nr) {
      for (int64_t i = 0; i < kc; i += 16) _mm512_store_ps(dst + i, _mm512_setzero_ps());
      continue;
    }
    const uint8_t* row = a.w->data + static_cast<size_t>(o + r) * a.w_stride;
    for (int64_t i = 0; i < kc; i += 16)
      _mm512_store_ps(dst + i, L::load(row, k0 + i, tail_mask(kc - i)));
  }
}

// One tile of R weight rows over one column chunk. acc holds R×kC lane
// vectors ([c][r]) from the previous chunk unless first; the last chunk
// writes y instead.
template <int R>
void panel_tile(const float* panel, const float* const* xr, const float* const* xnext, int64_t kc,
                bool first, bool last, float* acc_mem, float* const* yc, int nr, int ncv) {
  __m512 acc[kC][R];
  if (first) {
#pragma GCC unroll 32
    for (int c = 0; c < kC; ++c)
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) acc[c][r] = _mm512_setzero_ps();
  } else {
#pragma GCC unroll 32
    for (int c = 0; c < kC; ++c)
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) acc[c][r] = _mm512_load_ps(acc_mem + (c * R + r) * 16);
  }
  const auto step = [&](int64_t i, __mmask16 m) __attribute__((always_inline)) {
    __m512 xv[kC];
#pragma GCC unroll 32
    for (int c = 0; c < kC; ++c) xv[c] = _mm512_maskz_loadu_ps(m, xr[c] + i);
#pragma GCC unroll 32
    for (int c = 0; c < kC; ++c)
      _mm_prefetch(reinterpret_cast<const char*>(xnext[c] + i), _MM_HINT_T0);
#pragma GCC unroll 32
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_load_ps(panel + r * kKc + i);
#pragma GCC unroll 32
      for (int c = 0; c < kC; ++c) acc[c][r] = _mm512_fmadd_ps(wv, xv[c], acc[c][r]);
    }
  };
  int64_t i = 0;
  for (; i + 16 <= kc; i += 16) step(i, 0xffff);
  if (i < kc) step(i, tail_mask(kc - i));
  if (last) {
    constexpr int kSums = kC * R;
    alignas(64) float sums[(kSums + 15) / 16 * 16];
    // Constant indices only (a variable one would keep acc in memory).
#pragma GCC unroll 2
    for (int g = 0; g < kSums; g += 16) {
      __m512 v[16];
#pragma GCC unroll 16
      for (int k = 0; k < 16; ++k)
        v[k] = g + k < kSums ? acc[(g + k) / R][(g + k) % R] : _mm512_setzero_ps();
      hsum16x16(v, sums + g);
    }
#pragma GCC unroll 32
    for (int k = 0; k < kSums; ++k)
      if (k / R < ncv && k % R < nr) yc[k / R][k % R] = sums[k];
  } else {
#pragma GCC unroll 32
    for (int c = 0; c < kC; ++c)
#pragma GCC unroll 32
      for (int r = 0; r < R; ++r) _mm512_store_ps(acc_mem + (c * R + r) * 16, acc[c][r]);
  }
}

template <class L>
void panel_rows(const MatmulArgs& a, int64_t o0, int64_t o1) {
  const int64_t cols = a.w->cols;
  const int64_t rows = a.w->rows;
  // The activation block is read again for every kR weight rows, so it must
  // stay in L2 (a private 2 MiB per core on the development machine).
  const int64_t nc_fit = kXBlockBytes / (cols * static_cast<int64_t>(sizeof(float))) / kC * kC;
  const int64_t nc = std::clamp<int64_t>(nc_fit, kC, kNc);
  alignas(64) float panel[kR * kKc];
  alignas(64) float acc_mem[kNc * kR * 16];
  for (int64_t n0 = 0; n0 < a.n; n0 += nc) {
    const int64_t nn = std::min<int64_t>(nc, a.n - n0);
    for (int64_t o = o0; o < o1; o += kR) {
      const int nr = static_cast<int>(std::min<int64_t>(kR, o1 - o));
      for (int64_t k0 = 0; k0 < cols; k0 += kKc) {
        const int64_t kc = std::min<int64_t>(kKc, cols - k0);
        const bool first = k0 == 0, last = k0 + kc == cols;
        convert_panel<L>(a, o, nr, k0, kc, panel);
        // The next panel's weights come from DRAM on first use; fetch them
        // into L2 a few lines per tile while this panel is in use, so the
        // next conversion does not wait on memory.
        int64_t next_o = o, next_k0 = k0 + kKc;
        if (next_k0 >= cols) next_o = o + kR, next_k0 = 0;
        const int64_t next_nr = std::min<int64_t>(kR, o1 - next_o);
        const int64_t next_bytes = std::min<int64_t>(kKc, cols - next_k0) * L::kSize;
        const int64_t lines_per_row = (next_bytes + 63) / 64;
        const int64_t lines = next_nr > 0 ? next_nr * lines_per_row : 0;
        const int64_t lines_per_tile = (lines + (nn + kC - 1) / kC - 1) / ((nn + kC - 1) / kC);
        const uint8_t* next_w =
            lines > 0 ? a.w->data + static_cast<size_t>(next_o) * a.w_stride + next_k0 * L::kSize
                      : a.w->data;
        int64_t line = 0, in_row = 0;
        const uint8_t* pf = next_w;
        for (int64_t c0 = 0; c0 < nn; c0 += kC) {
          for (const int64_t end = std::min(lines, line + lines_per_tile); line < end; ++line) {
            _mm_prefetch(reinterpret_cast<const char*>(pf) + in_row * 64, _MM_HINT_T1);
            if (++in_row == lines_per_row) in_row = 0, pf += a.w_stride;
          }
          const int ncv = static_cast<int>(std::min<int64_t>(kC, nn - c0));
          const float* xr[kC];
          const float* xnext[kC];
          float* yc[kC];
          // Missing activation rows repeat the last real one and are not stored.
          for (int c = 0; c < kC; ++c) {
            const int64_t row = n0 + c0 + std::min(c, ncv - 1);
            xr[c] = a.x + row * cols + k0;
            yc[c] = a.y + row * rows + o;
            // The next tile's activations are fetched into L1 during this one.
            xnext[c] = a.x + std::min(row + kC, n0 + nn - 1) * cols + k0;
          }
          float* const am = acc_mem + c0 * kR * 16;
          // A short group (the last of a task) takes the 4-row tile: less wasted work.
          if (nr <= 4) {
            panel_tile<4>(panel, xr, xnext, kc, first, last, am, yc, nr, ncv);
          } else {
            panel_tile<kR>(panel, xr, xnext, kc, first, last, am, yc, nr, ncv);
          }
        }
      }
    }
  }
}

template <class L>
void rows_impl(const MatmulArgs& a, int64_t o0, int64_t o1) {
  if (a.n < kPanelMinN) return small_rows<L>(a, o0, o1);
  panel_rows<L>(a, o0, o1);
}

}  // namespace

void matmul_rows_avx512(const MatmulArgs& a, int64_t o0, int64_t o1) {
  switch (a.w->type) {
    case DType::F16:
      return rows_impl<LoadF16>(a, o0, o1);
    case DType::BF16:
      return rows_impl<LoadBF16>(a, o0, o1);
    case DType::F32:
      return rows_impl<LoadF32>(a, o0, o1);
    default:
      return;  // matmul_qgroups_avx512 (matmul_quant_avx512.cpp)
  }
}

}  // namespace nucleus::kernels::detail
