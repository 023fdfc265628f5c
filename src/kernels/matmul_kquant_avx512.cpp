// AVX-512 (BW + VNNI) kernels for the super-block types (matmul_kquant.h
// gives the reduction), entered only after matmul_isa_supported(kAvx512).
// As the AVX2 file, one weight row at a time with the unpacked super-block
// shared by up to kC activation rows, but 64 bytes (four 16-element
// sub-blocks) per step: vpmaddubsw forms pair sums and vpdpwssd multiplies
// them by the sub-block scales and accumulates. The 32-element legacy types
// run the AVX2 kernels.
// GCC 12's AVX-512 intrinsic headers start some results from
// _mm512_undefined_*(), which trips -Wuninitialized after inlining.
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/kquant_fused_simd.h"
#include "kernels/matmul_kquant.h"

namespace nucleus::kernels::detail {
namespace {

constexpr int kC = 4;

template <bool Signed>
inline __m512i pair_products(__m512i w, __m512i x) {
  if constexpr (Signed) {
    const __mmask64 neg = _mm512_movepi8_mask(w);
    const __m512i xs = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
    return _mm512_maddubs_epi16(_mm512_abs_epi8(w), xs);
  } else {
    return _mm512_maddubs_epi16(w, x);
  }
}

struct Prepared {
  IntBlock b;
  __m512i scv[4];  // chunk i: sc[4i + L/8] in int16 lane L
  __m256i scoff;   // −offset·sc (int16)
  __m256i mn;
};

template <bool Signed>
void prepare_super(DType t, const KquantTraits& tr, const uint8_t* row, int64_t s, Prepared& p) {
  unpack_super(t, row, s, p.b);
  if constexpr (Signed) {  // u = kv + 128: back to the signed table value
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int i = 0; i < 4; ++i) {
      auto* q = reinterpret_cast<__m512i*>(p.b.u + 64 * i);
      _mm512_store_si512(q, _mm512_xor_si512(_mm512_load_si512(q), flip));
    }
  }
  const __m256i sc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.b.sc));
  const __m512i sc512 = _mm512_castsi256_si512(sc);
  for (int i = 0; i < 4; ++i) {
    alignas(64) int16_t idx[32];
    for (int l = 0; l < 32; ++l) idx[l] = static_cast<int16_t>(4 * i + l / 8);
    p.scv[i] = _mm512_permutexvar_epi16(_mm512_load_si512(idx), sc512);
  }
  const int off = Signed ? 0 : tr.offset;
  p.scoff = _mm256_mullo_epi16(sc, _mm256_set1_epi16(static_cast<int16_t>(-off)));
  p.mn = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.b.mn));
}

inline int32_t hsum256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

template <bool Signed, bool HasMin>
void rows_super(const KqArgs& a, const KquantTraits& tr, int64_t o0, int64_t o1) {
  const DType t = a.w->type;
  const int64_t cols = a.w->cols;
  const int64_t ns = cols / kSuperBlock;
  const int64_t rows = a.w->rows;
  Prepared p;
  for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
    const int cn = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
    KqActView x[kC];
    for (int c = 0; c < cn; ++c) x[c] = kq_act_view(a.act + (c0 + c) * a.act_stride, cols, 256);
    for (int64_t o = o0; o < o1; ++o) {
      const uint8_t* row = a.w->data + static_cast<size_t>(o) * a.w_stride;
      float acc[kC] = {};
      for (int64_t s = 0; s < ns; ++s) {
        prepare_super<Signed>(t, tr, row, s, p);
        for (int c = 0; c < cn; ++c) {
          const int8_t* q = x[c].q + s * kSuperBlock;
          const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[c].bs + 16 * s));
          __m512i isum = _mm512_castsi256_si512(_mm256_madd_epi16(bs, p.scoff));
          isum = _mm512_inserti64x4(isum, _mm256_setzero_si256(), 1);
          for (int i = 0; i < 4; ++i) {
            const __m512i w = _mm512_load_si512(p.b.u + 64 * i);
            const __m512i xv = _mm512_loadu_si512(q + 64 * i);
            isum = _mm512_dpwssd_epi32(isum, pair_products<Signed>(w, xv), p.scv[i]);
          }
          const float dx = x[c].dx[s];
          acc[c] =
              std::fma(static_cast<float>(_mm512_reduce_add_epi32(isum)), p.b.d[0] * dx, acc[c]);
          if constexpr (HasMin) {
            const int32_t msum = hsum256(_mm256_madd_epi16(bs, p.mn));
            acc[c] = std::fma(static_cast<float>(-msum), p.b.m[0] * dx, acc[c]);
          }
        }
      }
      for (int c = 0; c < cn; ++c) a.y[(c0 + c) * rows + o] = acc[c];
    }
  }
}

// Q4_K / Q5_K / Q6_K with 512-bit vpdpbusd: each 64-element chunk of a
// super-block is unpacked into one zmm in element order (so it meets 64
// contiguous activation bytes), vpdpbusd from zero gives 4-element sums (at
// most 4·63·127 < 2^15, so they pack to int16 exactly), and vpdpwssd applies
// the 16-element sub-block scales to two packed chunks at once.
template <DType T>
inline __m512i chunk512(const uint8_t* b, int i) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  if constexpr (T == DType::Q6_K) {
    const int h = i / 2, odd = i % 2;
    const __m512i ql = _mm512_loadu_si512(b + 64 * h);
    const __m512i lo = _mm512_and_si512(odd ? _mm512_srli_epi16(ql, 4) : ql, low);
    const __m512i qh = _mm512_broadcast_i64x4(load32(b + 128 + 32 * h));
    const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(4 * odd)),
                                          _mm256_set1_epi16(static_cast<int16_t>(4 * odd + 2)), 1);
    const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qh, sh), _mm512_set1_epi8(3));
    return _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
  } else {
    const uint8_t* qs = b + (T == DType::Q5_K ? 48 : 16);
    const __m512i v = _mm512_broadcast_i64x4(load32(qs + 32 * i));
    const __m512i sh4 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    __m512i w = _mm512_and_si512(_mm512_srlv_epi16(v, sh4), low);
    if constexpr (T == DType::Q5_K) {
      const __m512i qh = _mm512_broadcast_i64x4(load32(b + 16));
      const __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(2 * i)),
                                            _mm256_set1_epi16(static_cast<int16_t>(2 * i + 1)), 1);
      const __m512i hb = _mm512_and_si512(_mm512_srlv_epi16(qh, sh), _mm512_set1_epi8(1));
      w = _mm512_or_si512(w, _mm512_slli_epi16(hb, 4));
    }
    return w;
  }
}

template <DType T, int C>
void tile512(const KqArgs& a, int64_t c0, int64_t o0, int64_t o1) {
  const int64_t cols = a.w->cols;
  const int64_t ns = cols / 256;
  const int64_t rows = a.w->rows;
  constexpr size_t bb = T == DType::Q6_K ? 210 : T == DType::Q5_K ? 176 : 144;
  // int16 lane L of a packed pair p takes sub-block 8p + 4·((L%8) ≥ 4) + L/8.
  alignas(64) int16_t idx[2][32];
  for (int p = 0; p < 2; ++p)
    for (int l = 0; l < 32; ++l)
      idx[p][l] = static_cast<int16_t>(8 * p + ((l % 8) >= 4 ? 4 : 0) + l / 8);
  const __m512i idx0 = _mm512_load_si512(idx[0]), idx1 = _mm512_load_si512(idx[1]);
  const __m256i mn_idx =
      _mm256_setr_epi8(0, -128, 0, -128, 1, -128, 1, -128, 2, -128, 2, -128, 3, -128, 3, -128, 4,
                       -128, 4, -128, 5, -128, 5, -128, 6, -128, 6, -128, 7, -128, 7, -128);
  KqActView x[C];
  for (int c = 0; c < C; ++c) x[c] = kq_act_view(a.act + (c0 + c) * a.act_stride, cols, 256);
  for (int64_t o = o0; o < o1; ++o) {
    const uint8_t* row = a.w->data + static_cast<size_t>(o) * a.w_stride;
    float acc[C] = {};
    for (int64_t s = 0; s < ns; ++s) {
      const uint8_t* b = row + static_cast<size_t>(s) * bb;
      __m256i sc16, mn16 = _mm256_setzero_si256();
      if constexpr (T == DType::Q6_K) {
        sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
      } else {
        // Each 32-element scale serves two 16-element sub-blocks.
        const __m256i sc8 = _mm256_set1_epi64x(static_cast<int64_t>(k4_bytes(b + 4, false)));
        const __m256i mn8 = _mm256_set1_epi64x(static_cast<int64_t>(k4_bytes(b + 4, true)));
        sc16 = _mm256_shuffle_epi8(sc8, mn_idx);
        mn16 = _mm256_shuffle_epi8(mn8, mn_idx);
      }
      const __m512i s01 = _mm512_permutexvar_epi16(idx0, _mm512_castsi256_si512(sc16));
      const __m512i s23 = _mm512_permutexvar_epi16(idx1, _mm512_castsi256_si512(sc16));
      const __m512i w0 = chunk512<T>(b, 0), w1 = chunk512<T>(b, 1);
      const __m512i w2 = chunk512<T>(b, 2), w3 = chunk512<T>(b, 3);
      const __m512i z = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        const int8_t* q = x[c].q + s * 256;
        const __m256i bs = load32(x[c].bs + 16 * s);
        const __m512i d0 = _mm512_dpbusd_epi32(z, w0, _mm512_loadu_si512(q));
        const __m512i d1 = _mm512_dpbusd_epi32(z, w1, _mm512_loadu_si512(q + 64));
        const __m512i d2 = _mm512_dpbusd_epi32(z, w2, _mm512_loadu_si512(q + 128));
        const __m512i d3 = _mm512_dpbusd_epi32(z, w3, _mm512_loadu_si512(q + 192));
        __m512i t = _mm512_dpwssd_epi32(z, _mm512_packs_epi32(d0, d1), s01);
        t = _mm512_dpwssd_epi32(t, _mm512_packs_epi32(d2, d3), s23);
        int32_t isum = _mm512_reduce_add_epi32(t);
        const float dx = x[c].dx[s];
        if constexpr (T == DType::Q6_K) {
          isum -= 32 * fused_hsum(_mm256_madd_epi16(bs, sc16));
          acc[c] = std::fma(static_cast<float>(isum), fused_f16(b + 208) * dx, acc[c]);
        } else {
          const int32_t msum = fused_hsum(_mm256_madd_epi16(bs, mn16));
          acc[c] = std::fma(static_cast<float>(isum), fused_f16(b) * dx, acc[c]);
          acc[c] = std::fma(static_cast<float>(-msum), fused_f16(b + 2) * dx, acc[c]);
        }
      }
    }
    for (int c = 0; c < C; ++c) a.y[(c0 + c) * rows + o] = acc[c];
  }
}

template <DType T>
void rows512(const KqArgs& a, int64_t o0, int64_t o1) {
  constexpr int kTile = 4;
  int64_t c0 = 0;
  for (; c0 + kTile <= a.n; c0 += kTile) tile512<T, kTile>(a, c0, o0, o1);
  switch (a.n - c0) {
    case 3:
      return tile512<T, 3>(a, c0, o0, o1);
    case 2:
      return tile512<T, 2>(a, c0, o0, o1);
    case 1:
      return tile512<T, 1>(a, c0, o0, o1);
    default:
      return;
  }
}

}  // namespace

void kq_rows_avx512(const KqArgs& a, int64_t o0, int64_t o1) {
  switch (a.w->type) {
    case DType::Q4_K:
      return rows512<DType::Q4_K>(a, o0, o1);
    case DType::Q5_K:
      return rows512<DType::Q5_K>(a, o0, o1);
    case DType::Q6_K:
      return rows512<DType::Q6_K>(a, o0, o1);
    default:
      break;
  }
  const KquantTraits tr = kquant_traits(a.w->type);
  if (tr.act_block != kSuperBlock) return kq_rows_avx2(a, o0, o1);
  if (tr.table) return rows_super<true, false>(a, tr, o0, o1);
  if (tr.has_min) return rows_super<false, true>(a, tr, o0, o1);
  return rows_super<false, false>(a, tr, o0, o1);
}

}  // namespace nucleus::kernels::detail
