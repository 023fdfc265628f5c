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
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/kquant_fused_simd.h"
#include "kernels/kquant_unpack_simd.h"
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
void prepare_super(DType t, const KquantTraits& tr, const uint8_t* row, size_t bb, int64_t s,
                   Prepared& p) {
  unpack_super_fast(t, row, bb, s, p.b);
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
  const size_t bb = static_cast<size_t>(dtype_info(t).block_bytes);
  Prepared p;
  for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
    const int cn = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
    KqActView x[kC];
    for (int c = 0; c < cn; ++c) x[c] = kq_act_view(a.act + (c0 + c) * a.act_stride, cols, 256);
    for (int64_t o = o0; o < o1; ++o) {
      const uint8_t* row = a.w->data + static_cast<size_t>(o) * a.w_stride;
      float acc[kC] = {};
      for (int64_t s = 0; s < ns; ++s) {
        prepare_super<Signed>(t, tr, row, bb, s, p);
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

}  // namespace

namespace {
struct MaddVnni {
  static __m256i f(__m256i acc, __m256i p, __m256i s) { return _mm256_dpwssd_epi32(acc, p, s); }
};
}  // namespace

void kq_rows_avx512(const KqArgs& a, int64_t o0, int64_t o1) {
  if (fused_rows<MaddVnni>(a, o0, o1)) return;
  const KquantTraits tr = kquant_traits(a.w->type);
  if (tr.act_block != kSuperBlock) return kq_rows_avx2(a, o0, o1);
  if (tr.table) return rows_super<true, false>(a, tr, o0, o1);
  if (tr.has_min) return rows_super<false, true>(a, tr, o0, o1);
  return rows_super<false, false>(a, tr, o0, o1);
}

}  // namespace nucleus::kernels::detail
