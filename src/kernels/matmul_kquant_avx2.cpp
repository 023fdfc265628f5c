// AVX2 kernels for the K-quant and legacy types (matmul_kquant.h gives the
// reduction). One weight row at a time: a super-block (or 8 legacy blocks)
// is unpacked once into bytes and integer scales, then multiplied with up to
// kC activation rows — the unpacking is shared by a prefill tile, and decode
// runs the same code with one row. vpmaddubsw pairs unsigned weights
// (≤ 63) with signed activations without saturating; IQ4 values are signed
// (up to ±127), so those use |w| and the activation with w's sign.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/kquant_fused_simd.h"
#include "kernels/matmul_kquant.h"

namespace nucleus::kernels::detail {
namespace {

constexpr int kC = 4;

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

template <bool Signed>
inline __m256i pair_products(__m256i w, __m256i x) {
  if constexpr (Signed) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  } else {
    return _mm256_maddubs_epi16(w, x);
  }
}

// One unpacked super-block with its scales laid out for vpmaddwd.
struct Prepared {
  IntBlock b;
  __m256i scv[8];  // chunk i: sc[2i] in lanes 0..7, sc[2i+1] in lanes 8..15
  __m256i scoff;   // −offset·sc (int16), multiplied with the block sums
  __m256i mn;
};

template <bool Signed>
void prepare_super(DType t, const KquantTraits& tr, const uint8_t* row, int64_t s, Prepared& p) {
  unpack_super(t, row, s, p.b);
  if constexpr (Signed) {  // u = kv + 128: back to the signed table value
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int i = 0; i < 8; ++i) {
      auto* q = reinterpret_cast<__m256i*>(p.b.u + 32 * i);
      _mm256_store_si256(q, _mm256_xor_si256(_mm256_load_si256(q), flip));
    }
  }
  const __m256i sc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.b.sc));
  const __m256i idx = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3,
                                       2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  for (int i = 0; i < 8; ++i) {
    // Bring sc[2i], sc[2i+1] to the bottom of both halves, then spread.
    const __m128i pair = _mm_cvtsi32_si128((p.b.sc[2 * i] & 0xffff) | (p.b.sc[2 * i + 1] * 65536));
    p.scv[i] = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(pair), idx);
  }
  const int off = Signed ? 0 : tr.offset;
  p.scoff = _mm256_mullo_epi16(sc, _mm256_set1_epi16(static_cast<int16_t>(-off)));
  p.mn = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.b.mn));
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
          __m256i isum = _mm256_madd_epi16(bs, p.scoff);
          for (int i = 0; i < 8; ++i) {
            const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.b.u + 32 * i));
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * i));
            isum =
                _mm256_add_epi32(isum, _mm256_madd_epi16(pair_products<Signed>(w, xv), p.scv[i]));
          }
          const float dx = x[c].dx[s];
          acc[c] = std::fma(static_cast<float>(hsum(isum)), p.b.d[0] * dx, acc[c]);
          if constexpr (HasMin) {
            const int32_t msum = hsum(_mm256_madd_epi16(bs, p.mn));
            acc[c] = std::fma(static_cast<float>(-msum), p.b.m[0] * dx, acc[c]);
          }
        }
      }
      for (int c = 0; c < cn; ++c) a.y[(c0 + c) * rows + o] = acc[c];
    }
  }
}

template <bool Signed, bool HasMin>
void rows_legacy(const KqArgs& a, const KquantTraits& tr, int64_t o0, int64_t o1) {
  const DType t = a.w->type;
  const int64_t cols = a.w->cols;
  const int64_t nb = cols / 32;
  const int64_t rows = a.w->rows;
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const int off = Signed ? 0 : tr.offset;
  IntBlock blk;
  for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
    const int cn = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
    KqActView x[kC];
    for (int c = 0; c < cn; ++c) x[c] = kq_act_view(a.act + (c0 + c) * a.act_stride, cols, 32);
    for (int64_t o = o0; o < o1; ++o) {
      const uint8_t* row = a.w->data + static_cast<size_t>(o) * a.w_stride;
      float acc[kC] = {};
      for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const int cnt = static_cast<int>(std::min<int64_t>(8, nb - b0));
        unpack_legacy(t, row, b0, cnt, blk);
        for (int c = 0; c < cn; ++c) {
          alignas(32) int32_t dots[8];
          alignas(32) int32_t bsum[8];
          for (int j = 0; j < cnt; ++j) {
            __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk.u + 32 * j));
            if constexpr (Signed) w = _mm256_xor_si256(w, flip);
            const __m256i xv =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[c].q + 32 * (b0 + j)));
            dots[j] = hsum(_mm256_madd_epi16(pair_products<Signed>(w, xv), ones16));
            bsum[j] = x[c].bs[2 * (b0 + j)] + x[c].bs[2 * (b0 + j) + 1];
          }
          for (int j = 0; j < cnt; ++j) {
            const float dx = x[c].dx[b0 + j];
            acc[c] = std::fma(static_cast<float>(dots[j] - off * bsum[j]), blk.d[j] * dx, acc[c]);
            if constexpr (HasMin)
              acc[c] = std::fma(static_cast<float>(bsum[j]), blk.m[j] * dx, acc[c]);
          }
        }
      }
      for (int c = 0; c < cn; ++c) a.y[(c0 + c) * rows + o] = acc[c];
    }
  }
}

}  // namespace

namespace {
struct MaddAvx2 {
  static __m256i f(__m256i acc, __m256i p, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
  }
};
}  // namespace

void kq_rows_avx2(const KqArgs& a, int64_t o0, int64_t o1) {
  if (fused_rows<MaddAvx2>(a, o0, o1)) return;
  const KquantTraits tr = kquant_traits(a.w->type);
  if (tr.act_block == kSuperBlock) {
    if (tr.table) return rows_super<true, false>(a, tr, o0, o1);
    if (tr.has_min) return rows_super<false, true>(a, tr, o0, o1);
    return rows_super<false, false>(a, tr, o0, o1);
  }
  if (tr.table) return rows_legacy<true, false>(a, tr, o0, o1);
  if (tr.has_min) return rows_legacy<false, true>(a, tr, o0, o1);
  return rows_legacy<false, false>(a, tr, o0, o1);
}

}  // namespace nucleus::kernels::detail
