#pragma once
// The second reduction definition for BF16 weight matrices: the BF16 dot
// product (AVX-512 BF16's vdpbf16ps) instead of widening weights to F32.
//
// Definition (every path — scalar reference, AVX-512 BF16, AVX2 emulation —
// computes exactly this, so results are bit-identical across ISA, batch size,
// thread count and prefill vs decode):
//  * each activation is rounded to BF16 as vcvtne2ps2bf16 does
//    (bf16dot_round): round to nearest even, denormals to signed zero, NaN
//    to a quiet NaN;
//  * 16 F32 lane sums start at +0. For each 32-column chunk c in order (the
//    last one zero-padded), lane j takes the pair i0 = 32c+2j, i1 = i0+1 and
//    does, as vdpbf16ps does (Intel SDM pseudo-code, checked bit for bit on
//    hardware by kernels_bf16dot_test): acc = ftz(fma(w[i1], x[i1], acc));
//    acc = ftz(fma(w[i0], x[i0], acc)) — odd element first, each step
//    rounded once (round to nearest even; the BF16×BF16 product is exact in
//    F32 unless it leaves F32's range), weight inputs that are BF16
//    denormals read as signed zero (DAZ) and a denormal step result flushed
//    to signed zero (FTZ);
//  * then matmul_isa.h's fixed tree: s[j] = l[j] + l[j+8], s[j] + s[j+4],
//    s[j] + s[j+2], s[0] + s[1] (plain F32 adds).
#include <cstdint>

#include "kernels/matmul.h"

namespace nucleus::kernels {

// Run-time choice of the definition BF16 weights use (EngineOptions::bf16_dot).
enum class Bf16Dot {
  kAuto,  // on only where bf16dot_pays()
  kOn,    // always (AVX2 emulation where the CPU lacks AVX512_BF16)
  kOff,   // F32-widening definition of matmul_isa.h
};
// Parses "auto", "on", "off"; throws Error otherwise.
Bf16Dot parse_bf16_dot(const char* s);
const char* bf16_dot_name(Bf16Dot d);

// True when the CPU has AVX512_BF16 (and the AVX-512 matmul path is allowed)
// and is of a microarchitecture whose vdpbf16ps delivers more multiply-adds
// per second than its F32 FMA: AMD Zen 4 and later (CPUID family 0x19 and
// up; measured on Zen 5 with bf16dot_probe_ratio: 1.85, and TinyLlama BF16
// pp512 232 vs 135 tok/s). Intel's (the development Sapphire Rapids class
// Xeon measured 0.75) stay on the F32-widening definition. A table, not the
// timing probe: a process's results must not depend on a measurement.
bool bf16dot_pays();
// FLOP/s of vdpbf16ps ÷ FLOP/s of vfmadd231ps on one core (0 without
// AVX512_BF16), measured once per process (about a millisecond). Reported
// by `bench` beside the table's choice; it decides nothing.
double bf16dot_probe_ratio();
// Resolves kAuto.
bool bf16dot_enabled(Bf16Dot d);

// Round to BF16 as vcvtne2ps2bf16 does (see above).
uint16_t bf16dot_round(float f);

enum class Bf16DotIsa { kAvx2, kAvx512 };
// kAvx512 needs AVX-512 F/BW/VL/DQ + AVX512_BF16 (off with NUCLEUS_NO_AVX512=1);
// kAvx2 needs AVX2+FMA.
bool bf16dot_isa_supported(Bf16DotIsa isa);
Bf16DotIsa bf16dot_default_isa();

// y = x · Wᵀ for a BF16 matrix w under the definition above. ws holds the
// BF16 activations (allocates nothing once it has grown). Throws Error for a
// non-BF16 matrix, bad sizes, or an unsupported isa.
void matmul_bf16dot(Bf16DotIsa isa, const Matrix& w, const float* x, int64_t n, float* y,
                    ThreadPool& pool, MatmulWorkspace& ws);
void matmul_bf16dot(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
                    MatmulWorkspace& ws);
// Scalar reference of the definition.
void matmul_bf16dot_reference(const Matrix& w, const float* x, int64_t n, float* y);

namespace detail {
// Internal to kernels/: activations already rounded to BF16, each row padded
// with zeros to a multiple of 32 (xstride elements).
struct Bf16DotArgs {
  const uint16_t* w = nullptr;  // rows × cols
  int64_t cols = 0;
  const uint16_t* x = nullptr;  // n × xstride
  int64_t xstride = 0;
  int64_t n = 0;
  int64_t rows = 0;
  float* y = nullptr;  // n × rows
};
void bf16dot_rows_avx2(const Bf16DotArgs& a, int64_t o0, int64_t o1);
void bf16dot_rows_avx512(const Bf16DotArgs& a, int64_t o0, int64_t o1);
void bf16dot_round_row_avx512(const float* x, int64_t cols, uint16_t* out);
double bf16dot_probe_ratio_avx512();
}  // namespace detail

}  // namespace nucleus::kernels
