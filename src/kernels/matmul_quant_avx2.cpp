// AVX2 kernels for repacked Q8_0 / Q4_0 weights (quant_pack.h), the baseline
// every supported CPU has. A 16-row group is two 8-lane halves, one lane per
// output row. Without VNNI, 4-byte dot products come from vpmaddubsw (unsigned
// × signed byte pairs into int16) and vpmaddwd: Q8_0 weights are turned back
// to signed and fed as |w| with x carrying w's sign (|w|·|x| pairs fit int16),
// Q4_0's stored nibbles are already unsigned and small, and each block's sum
// starts from -8·Σx to remove their offset.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/matmul_isa.h"

namespace nucleus::kernels::detail {
namespace {

constexpr int kC = 3;  // activation rows per tile (2·kC int + 2·kC float accumulators)

inline __m256i bcast32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Adds chunk k (4 bytes of each of 8 rows in half h) times x's 4 bytes.
struct DotQ8 {
  static __m256i weights(const uint8_t* blk, int k, int h) {
    const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + 64 * k + 32 * h));
    return _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  static __m256i dot(__m256i w, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
  }
};
struct DotQ4 {
  static __m256i weights(const uint8_t* blk, int k, int h) {
    const __m256i v =
        _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + 64 * (k & 3) + 32 * h));
    return _mm256_and_si256(k < 4 ? v : _mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
  }
  static __m256i dot(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
  }
};

template <class D, int C>
void tile(const MatmulArgs& a, int64_t g, int64_t c0) {
  const PackedLayout& l = a.layout;
  const int64_t nb = l.blocks;
  const uint8_t* grp = a.packed + static_cast<size_t>(g) * l.group_stride;
  const uint8_t* xq[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) xq[c] = a.act + static_cast<size_t>(c0 + c) * a.act_stride;
  const size_t dx_off = static_cast<size_t>(nb) * 32;
  const size_t start_off = static_cast<size_t>(nb) * 36;
  __m256 acc[2][C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) acc[0][c] = acc[1][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = grp + static_cast<size_t>(b) * l.block_bytes;
    __m256i isum[2][C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) isum[0][c] = isum[1][c] = bcast32(xq[c] + start_off + 4 * b);
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      const __m256i w0 = D::weights(blk, k, 0);
      const __m256i w1 = D::weights(blk, k, 1);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const __m256i xv = bcast32(xq[c] + b * 32 + 4 * k);
        isum[0][c] = _mm256_add_epi32(isum[0][c], D::dot(w0, xv));
        isum[1][c] = _mm256_add_epi32(isum[1][c], D::dot(w1, xv));
      }
    }
    const __m128i* sp = reinterpret_cast<const __m128i*>(grp + l.scales_offset() + 32 * b);
    const __m256 dw[2] = {_mm256_cvtph_ps(_mm_load_si128(sp)),
                          _mm256_cvtph_ps(_mm_load_si128(sp + 1))};
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      float dxs;
      std::memcpy(&dxs, xq[c] + dx_off + 4 * b, 4);
      const __m256 dx = _mm256_set1_ps(dxs);
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m256 scale = _mm256_mul_ps(dw[h], dx);
        acc[h][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[h][c]), scale, acc[h][c]);
      }
    }
  }
  const int64_t rows = a.w->rows;
  const int64_t o = g * kPackRows;
  const int64_t valid = std::min<int64_t>(kPackRows, rows - o);
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    float* yr = a.y + (c0 + c) * rows + o;
    if (valid == kPackRows) {
      _mm256_storeu_ps(yr, acc[0][c]);
      _mm256_storeu_ps(yr + 8, acc[1][c]);
    } else {
      alignas(32) float tmp[kPackRows];
      _mm256_store_ps(tmp, acc[0][c]);
      _mm256_store_ps(tmp + 8, acc[1][c]);
      std::memcpy(yr, tmp, static_cast<size_t>(valid) * sizeof(float));
    }
  }
}

using TileFn = void (*)(const MatmulArgs&, int64_t, int64_t);

template <class D, int... Cs>
constexpr auto table(std::integer_sequence<int, Cs...>) {
  return std::array<TileFn, sizeof...(Cs)>{&tile<D, Cs + 1>...};
}

template <class D>
void groups_impl(const MatmulArgs& a, int64_t g0, int64_t g1) {
  static constexpr auto kTable = table<D>(std::make_integer_sequence<int, kC>());
  for (int64_t g = g0; g < g1; ++g) {
    for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
      const int cn = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
      kTable[cn - 1](a, g, c0);
    }
  }
}

}  // namespace

void matmul_qgroups_avx2(const MatmulArgs& a, int64_t g0, int64_t g1) {
  if (a.w->type == DType::Q8_0) return groups_impl<DotQ8>(a, g0, g1);
  return groups_impl<DotQ4>(a, g0, g1);
}

}  // namespace nucleus::kernels::detail
