// AVX-512 (F/BW/VL/DQ + VNNI) matmul kernels, entered only after
// matmul_isa_supported(kAvx512). The 16 lane sums of matmul_isa.h are one zmm
// register per output; quantized weights go two 32-blocks per register (even
// block in lanes 0..7, odd block in lanes 8..15) through vpdpbusd, which
// multiplies unsigned by signed bytes: the weights are offset to unsigned and
// the offset's contribution is removed by starting each lane from a value
// precomputed with the activations.
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

// Scales of blocks b and b+1 spread over lanes 0..7 and 8..15 (0 for a
// missing second block): one 2-element f16 conversion and a permute.
template <class Block>
inline __m512 pair_scales(const Block* blk, bool two) {
  const uint32_t h = blk[0].d | (two ? static_cast<uint32_t>(blk[1].d) << 16 : 0u);
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h)));
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

// Blocks b and b+1 of a weight row as unsigned bytes (block b in the low 32
// bytes), offset so that vpdpbusd can take them: Q8_0 as w + 128, Q4_0 as the
// stored nibble (w + 8). Without a second block the high half is zero.
struct LoadQ8 {
  static __m512i load(const uint8_t* row, int64_t b, bool two, __m512& d) {
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(row) + b;
    d = pair_scales(blk, two);
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs));
    const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs))
                           : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};
struct LoadQ4 {
  static __m512i load(const uint8_t* row, int64_t b, bool two, __m512& d) {
    const auto* blk = reinterpret_cast<const BlockQ4_0*>(row) + b;
    d = pair_scales(blk, two);
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs));
    const __m128i q1 =
        two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs)) : _mm_setzero_si128();
    // [q0, q0, q1, q1] shifted by [0, 4, 0, 4] bits: low nibbles are elements
    // 0..15 of a block, high nibbles 16..31.
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(q0)),
                                         _mm256_broadcastsi128_si256(q1), 1);
    const __m512i shift = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
    return _mm512_and_si512(_mm512_srlv_epi64(v, shift), _mm512_set1_epi8(0x0f));
  }
};

template <class L, int R, int C>
void tile_quant(const MatmulArgs& a, int64_t o, int64_t c0) {
  const int64_t nb = a.w->cols / 32;
  const int64_t nbp = act_blocks_padded(a.w->cols);
  const uint8_t* wr[R];
  const uint8_t* xq[C];
  const float* xd[C];
  const uint8_t* xs[C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) wr[r] = a.w->data + static_cast<size_t>(o + r) * a.w_stride;
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    xq[c] = a.act + static_cast<size_t>(c0 + c) * a.act_stride;
    xd[c] = reinterpret_cast<const float*>(xq[c] + nbp * 32);
    xs[c] = xq[c] + nbp * 64;
  }
  __m512 acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const bool two = b + 1 < nb;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m512 dw;
      const __m512i wv = L::load(wr[r], b, two, dw);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        // Each lane starts from -offset·(its 4 x) so that it ends at exactly Σ w·x.
        const __m512i start = _mm512_loadu_si512(xs[c] + b * 32);
        const __m512i p = _mm512_dpbusd_epi32(start, wv, _mm512_loadu_si512(xq[c] + b * 32));
        const __m512 scale = _mm512_mul_ps(dw, _mm512_loadu_ps(xd[c] + b * 8));
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), scale, acc[r][c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) a.y[(c0 + c) * a.w->rows + o + r] = hsum16(acc[r][c]);
}

using TileFn = void (*)(const MatmulArgs&, int64_t, int64_t);

// kTable[r-1][c-1] = the tile kernel for r weight rows × c activation rows.
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
  for (int64_t o = o0; o < o1; o += kR) {
    const int r = static_cast<int>(std::min<int64_t>(kR, o1 - o));
    for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
      const int c = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
      Tiles<L, Quant>::kTable[r - 1][c - 1](a, o, c0);
    }
  }
}

}  // namespace

void matmul_rows_avx512(const MatmulArgs& a, int64_t o0, int64_t o1) {
  switch (a.w->type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return matmul_float_rows_avx512(a, o0, o1);
    case DType::Q8_0:
      return rows_impl<LoadQ8, true>(a, o0, o1);
    case DType::Q4_0:
      return rows_impl<LoadQ4, true>(a, o0, o1);
  }
}

}  // namespace nucleus::kernels::detail
