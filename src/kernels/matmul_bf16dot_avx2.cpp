// AVX2 emulation of the BF16-dot definition (matmul_bf16dot.h), bit-identical
// to vdpbf16ps: the 16 lane sums live in two 8-wide registers (lanes 0-7
// take a chunk's columns 0-15, lanes 8-15 columns 16-31, so each 32-byte
// load holds the eight (even, odd) pairs of eight lanes). A lane's two steps
// are two FMAs, odd element first; the BF16×BF16 product is exact, so an FMA
// rounds exactly as the instruction does. DAZ is applied to the weights (the
// activations were already flushed by rounding) and FTZ to every step result
// with explicit masks, because MXCSR's FTZ would keep exact denormal results.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/matmul_bf16dot.h"

namespace nucleus::kernels::detail {
namespace {

struct Pair {
  __m256 even, odd;
};

// Eight (even, odd) BF16 pairs widened to F32, denormals read as zero.
inline Pair widen_daz(const uint16_t* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const __m256i expo = _mm256_set1_epi32(0x7f800000);
  const __m256i mag = _mm256_set1_epi32(0x7fffffff);
  const __m256i zero = _mm256_setzero_si256();
  __m256i e = _mm256_slli_epi32(v, 16);
  __m256i o = _mm256_and_si256(v, hi);
  e = _mm256_andnot_si256(
      _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(e, expo), zero), mag), e);
  o = _mm256_andnot_si256(
      _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(o, expo), zero), mag), o);
  return {_mm256_castsi256_ps(e), _mm256_castsi256_ps(o)};
}

// Activations: rounded by bf16dot_round, never denormal.
inline Pair widen(const uint16_t* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return {
      _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)),
      _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))))};
}

inline __m256 ftz(__m256 v) {
  const __m256 mag = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 tiny = _mm256_cmp_ps(_mm256_and_ps(v, mag), _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
  return _mm256_andnot_ps(_mm256_and_ps(tiny, mag), v);
}

inline __m256 dp(__m256 acc, const Pair& w, const Pair& x) {
  acc = ftz(_mm256_fmadd_ps(w.odd, x.odd, acc));
  return ftz(_mm256_fmadd_ps(w.even, x.even, acc));
}

// The fixed tree of matmul_isa.h over lanes lo (0-7) and hi (8-15).
inline float hsum(__m256 lo, __m256 hi) {
  const __m256 h = _mm256_add_ps(lo, hi);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <int RW, int RX>
void tile(const Bf16DotArgs& a, int64_t o, int64_t r) {
  __m256 lo[RW][RX], hi[RW][RX];
  for (int i = 0; i < RW; ++i)
    for (int k = 0; k < RX; ++k) lo[i][k] = hi[i][k] = _mm256_setzero_ps();
  const int64_t full = a.cols / 32 * 32;
  alignas(32) uint16_t tail[RW][32];
  auto step = [&](int64_t c, const uint16_t* const* wp) {
    for (int k = 0; k < RX; ++k) {
      const uint16_t* xp = a.x + (r + k) * a.xstride + c;
      const Pair x0 = widen(xp), x1 = widen(xp + 16);
      for (int i = 0; i < RW; ++i) {
        lo[i][k] = dp(lo[i][k], widen_daz(wp[i]), x0);
        hi[i][k] = dp(hi[i][k], widen_daz(wp[i] + 16), x1);
      }
    }
  };
  for (int64_t c = 0; c < full; c += 32) {
    const uint16_t* wp[RW];
    for (int i = 0; i < RW; ++i) wp[i] = a.w + (o + i) * a.cols + c;
    step(c, wp);
  }
  if (full < a.cols) {
    const uint16_t* wp[RW];
    for (int i = 0; i < RW; ++i) {
      std::fill(tail[i], tail[i] + 32, uint16_t{0});
      std::memcpy(tail[i], a.w + (o + i) * a.cols + full,
                  static_cast<size_t>(a.cols - full) * sizeof(uint16_t));
      wp[i] = tail[i];
    }
    step(full, wp);
  }
  for (int i = 0; i < RW; ++i)
    for (int k = 0; k < RX; ++k) a.y[(r + k) * a.rows + o + i] = hsum(lo[i][k], hi[i][k]);
}

template <int RW>
void row_block(const Bf16DotArgs& a, int64_t o) {
  int64_t r = 0;
  for (; r + 2 <= a.n; r += 2) tile<RW, 2>(a, o, r);
  if (r < a.n) tile<RW, 1>(a, o, r);
}

}  // namespace

void bf16dot_rows_avx2(const Bf16DotArgs& a, int64_t o0, int64_t o1) {
  int64_t o = o0;
  // Decode and short batches: one weight row at a time (matmul_avx512.cpp).
  if (a.n >= 16)
    for (; o + 2 <= o1; o += 2) row_block<2>(a, o);
  for (; o < o1; ++o) row_block<1>(a, o);
}

}  // namespace nucleus::kernels::detail
