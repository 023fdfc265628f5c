// AVX-512 VNNI kernels for repacked Q8_0 / Q4_0 weights (quant_pack.h),
// entered only after matmul_isa_supported(kAvx512). One zmm lane per output
// row: a 64-byte chunk holds 4 bytes of each of 16 rows, and vpdpbusd with
// 4 activation bytes broadcast adds their products into the row's lane, so
// after 8 chunks each lane holds its row's exact block sum. The weights are
// stored offset to unsigned (vpdpbusd multiplies unsigned by signed) and each
// block's sum starts from -offset·Σx, precomputed with the activations.
// GCC 12's AVX-512 intrinsic headers start some results from
// _mm512_undefined_*(), which trips -Wuninitialized after inlining.
#pragma GCC diagnostic ignored "-Wuninitialized"
#ifndef __clang__  // a GCC-only warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/matmul_isa.h"

namespace nucleus::kernels::detail {
namespace {

// Tile: kG row groups (16 rows each) × kC activation rows; kG·kC int and
// kG·kC float accumulators stay in registers.
constexpr int kG = 2;
constexpr int kC = 5;

inline __m512i bcast32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Chunk k (0..7) of a block: 4 bytes of each of the 16 rows, unsigned.
// kPrefetch: how far ahead decode (one activation row) prefetches each row
// group's stream, 0 for none. Q4_0 does twice the work per byte of Q8_0, so
// the out-of-order window holds half as many bytes in flight and the stream
// stalls on memory: TinyLlama Q4_0 decode on Zen 5 measured 68 tok/s with
// 2 KiB (61 at 1 KiB, 65 at 4 KiB, 62 into L2 only) against 51 without;
// Q8_0 measured the same with and without.
struct ChunksQ8 {
  static constexpr int kPrefetch = 0;
  template <int G>
  static void load(const uint8_t* const* blk, int k, __m512i (&w)[G]) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) w[g] = _mm512_load_si512(blk[g] + 64 * k);
  }
};
struct ChunksQ4 {
  static constexpr int kPrefetch = 2048;
  template <int G>
  static void load(const uint8_t* const* blk, int k, __m512i (&w)[G]) {
    const __m512i low = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m512i v = _mm512_load_si512(blk[g] + 64 * (k & 3));
      w[g] = _mm512_and_si512(k < 4 ? v : _mm512_srli_epi16(v, 4), low);
    }
  }
};

template <class W, int G, int C>
void tile(const MatmulArgs& a, int64_t g0, int64_t c0) {
  const PackedLayout& l = a.layout;
  const int64_t nb = l.blocks;
  const uint8_t* grp[G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) grp[g] = a.packed + static_cast<size_t>(g0 + g) * l.group_stride;
  const uint8_t* xq[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) xq[c] = a.act + static_cast<size_t>(c0 + c) * a.act_stride;
  const size_t dx_off = static_cast<size_t>(nb) * 32;
  const size_t start_off = static_cast<size_t>(nb) * 36;
  __m512 acc[G][C];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[g][c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) blk[g] = grp[g] + static_cast<size_t>(b) * l.block_bytes;
    // Decode splits each block's 8 chained vpdpbusd over two accumulators
    // (integer sums: any grouping is exact) to halve the latency chain;
    // prefill has enough independent tiles and needs the registers.
    constexpr int kSplit = C == 1 ? 2 : 1;
    __m512i isum[kSplit][G][C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m512i start = bcast32(xq[c] + start_off + 4 * b);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) {
        isum[0][g][c] = start;
        if constexpr (kSplit == 2) isum[1][g][c] = _mm512_setzero_si512();
      }
    }
    if constexpr (C == 1 && W::kPrefetch > 0) {
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g)
        for (size_t line = 0; line < l.block_bytes; line += 64)
          _mm_prefetch(reinterpret_cast<const char*>(blk[g]) + W::kPrefetch + line, _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) {
      __m512i w[G];
      W::template load<G>(blk, k, w);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const __m512i xv = bcast32(xq[c] + b * 32 + 4 * k);
#pragma GCC unroll 8
        for (int g = 0; g < G; ++g)
          isum[k % kSplit][g][c] = _mm512_dpbusd_epi32(isum[k % kSplit][g][c], w[g], xv);
      }
    }
    if constexpr (kSplit == 2) {
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g)
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) isum[0][g][c] = _mm512_add_epi32(isum[0][g][c], isum[1][g][c]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m512 dw = _mm512_cvtph_ps(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(grp[g] + l.scales_offset() + 32 * b)));
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        float dxs;
        std::memcpy(&dxs, xq[c] + dx_off + 4 * b, 4);
        const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(dxs));
        acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[0][g][c]), scale, acc[g][c]);
      }
    }
  }
  const int64_t rows = a.w->rows;
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    const int64_t o = (g0 + g) * kPackRows;
    const int64_t valid = std::min<int64_t>(kPackRows, rows - o);
    const __mmask16 m = valid >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << valid) - 1);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(a.y + (c0 + c) * rows + o, m, acc[g][c]);
  }
}

using TileFn = void (*)(const MatmulArgs&, int64_t, int64_t);

template <class W>
struct Tiles {
  template <int G, int... Cs>
  static constexpr auto row(std::integer_sequence<int, Cs...>) {
    return std::array<TileFn, sizeof...(Cs)>{&tile<W, G, Cs + 1>...};
  }
  template <int... Gs>
  static constexpr auto table(std::integer_sequence<int, Gs...>) {
    return std::array<std::array<TileFn, kC>, sizeof...(Gs)>{
        row<Gs + 1>(std::make_integer_sequence<int, kC>())...};
  }
  static constexpr auto kTable = table(std::make_integer_sequence<int, kG>());
};

template <class W>
void groups_impl(const MatmulArgs& a, int64_t g0, int64_t g1) {
  // kG groups stay in cache while every tile of activation rows passes them;
  // in decode they are kG independent dependency chains.
  for (int64_t g = g0; g < g1; g += kG) {
    const int gn = static_cast<int>(std::min<int64_t>(kG, g1 - g));
    for (int64_t c0 = 0; c0 < a.n; c0 += kC) {
      const int cn = static_cast<int>(std::min<int64_t>(kC, a.n - c0));
      Tiles<W>::kTable[gn - 1][cn - 1](a, g, c0);
    }
  }
}

}  // namespace

void matmul_qgroups_avx512(const MatmulArgs& a, int64_t g0, int64_t g1) {
  if (a.w->type == DType::Q8_0) return groups_impl<ChunksQ8>(a, g0, g1);
  return groups_impl<ChunksQ4>(a, g0, g1);
}

}  // namespace nucleus::kernels::detail
