#include "formats/random_normal.h"

#include <immintrin.h>

#include <bit>
#include <cmath>

#include "util/error.h"

namespace nucleus {

namespace {

constexpr uint32_t kMulA = 0x9e3779b9u;
constexpr uint32_t kMulB = 0xc2b2ae3du;
constexpr float kInv24 = 1.0f / 16777216.0f;
constexpr float kSqrt2 = 1.41421356237309505f;
constexpr float kLn2 = 0.693147180559945309f;
constexpr float kHalfPi = 1.57079632679489662f;

// Taylor coefficients: ln(m) = 2 atanh(s) = 2 s (1 + s^2/3 + s^4/5 + ...),
// s = (m-1)/(m+1), |s| <= 0.172 for m in [1/sqrt2, sqrt2]; sin and cos on
// [0, pi/2) in powers of a^2. Truncation errors are below float rounding.
constexpr float kL[] = {1.0f / 9, 1.0f / 7, 1.0f / 5, 1.0f / 3, 1.0f};
constexpr float kS[] = {1.0f / 6227020800.0f,
                        -1.0f / 39916800.0f,
                        1.0f / 362880.0f,
                        -1.0f / 5040.0f,
                        1.0f / 120.0f,
                        -1.0f / 6.0f,
                        1.0f};
constexpr float kC[] = {
    -1.0f / 87178291200.0f, 1.0f / 479001600.0f, -1.0f / 3628800.0f, 1.0f / 40320.0f,
    -1.0f / 720.0f,         1.0f / 24.0f,        -1.0f / 2.0f,       1.0f};

inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

template <size_t N>
inline float horner(const float (&c)[N], float x) {
  float acc = c[0];
  for (size_t i = 1; i < N; ++i) acc = std::fma(acc, x, c[i]);
  return acc;
}

void pair_scalar(const NormalStream& s, uint32_t p, float* z0, float* z1) {
  const uint32_t h1 = fmix32(p * kMulA + s.k0);
  const uint32_t h2 = fmix32(p * kMulB + s.k1);
  const float u1 = static_cast<float>(static_cast<int32_t>((h1 >> 8) + 1)) * kInv24;  // (0, 1]
  const float u2 = static_cast<float>(static_cast<int32_t>(h2 >> 8)) * kInv24;        // [0, 1)

  const uint32_t bits = std::bit_cast<uint32_t>(u1);
  int32_t e = static_cast<int32_t>(bits >> 23) - 127;
  float m = std::bit_cast<float>((bits & 0x7fffffu) | 0x3f800000u);
  if (m > kSqrt2) {
    m = m * 0.5f;
    e = e + 1;
  }
  const float sv = (m - 1.0f) / (m + 1.0f);
  const float t = sv * horner(kL, sv * sv);
  const float ln = std::fma(static_cast<float>(e), kLn2, t + t);
  const float r = std::sqrt(ln * -2.0f);

  const float q4 = u2 * 4.0f;
  const int32_t q = static_cast<int32_t>(q4);
  const float a = (q4 - static_cast<float>(q)) * kHalfPi;
  const float a2 = a * a;
  float sn = a * horner(kS, a2);
  float cs = horner(kC, a2);
  if (q & 1) {
    const float tmp = cs;
    cs = -sn;
    sn = tmp;
  }
  if (q & 2) {
    cs = -cs;
    sn = -sn;
  }
  *z0 = r * cs;
  *z1 = r * sn;
}

template <size_t N>
inline __m256 horner8(const float (&c)[N], __m256 x) {
  __m256 acc = _mm256_set1_ps(c[0]);
  for (size_t i = 1; i < N; ++i) acc = _mm256_fmadd_ps(acc, x, _mm256_set1_ps(c[i]));
  return acc;
}

inline __m256i fmix32x8(__m256i h) {
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int32_t>(0x85ebca6bu)));
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
  h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int32_t>(0xc2b2ae35u)));
  h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
  return h;
}

// Pairs p0 .. p0+7: the same operations as pair_scalar, lane by lane.
void pairs_avx2(const NormalStream& s, uint32_t p0, float* z0, float* z1) {
  const __m256i p = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(p0)),
                                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i h1 = fmix32x8(
      _mm256_add_epi32(_mm256_mullo_epi32(p, _mm256_set1_epi32(static_cast<int32_t>(kMulA))),
                       _mm256_set1_epi32(static_cast<int32_t>(s.k0))));
  const __m256i h2 = fmix32x8(
      _mm256_add_epi32(_mm256_mullo_epi32(p, _mm256_set1_epi32(static_cast<int32_t>(kMulB))),
                       _mm256_set1_epi32(static_cast<int32_t>(s.k1))));
  const __m256 inv24 = _mm256_set1_ps(kInv24);
  const __m256 u1 = _mm256_mul_ps(
      _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(h1, 8), _mm256_set1_epi32(1))), inv24);
  const __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(h2, 8)), inv24);

  const __m256i bits = _mm256_castps_si256(u1);
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
      _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x3f800000)));
  const __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(kSqrt2), _CMP_GT_OQ);
  m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
  e = _mm256_sub_epi32(e, _mm256_castps_si256(big));  // mask is -1 where halved
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sv = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
  const __m256 t = _mm256_mul_ps(sv, horner8(kL, _mm256_mul_ps(sv, sv)));
  const __m256 ln =
      _mm256_fmadd_ps(_mm256_cvtepi32_ps(e), _mm256_set1_ps(kLn2), _mm256_add_ps(t, t));
  const __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(ln, _mm256_set1_ps(-2.0f)));

  const __m256 q4 = _mm256_mul_ps(u2, _mm256_set1_ps(4.0f));
  const __m256i q = _mm256_cvttps_epi32(q4);
  const __m256 a = _mm256_mul_ps(_mm256_sub_ps(q4, _mm256_cvtepi32_ps(q)), _mm256_set1_ps(kHalfPi));
  const __m256 a2 = _mm256_mul_ps(a, a);
  __m256 sn = _mm256_mul_ps(a, horner8(kS, a2));
  __m256 cs = horner8(kC, a2);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 odd = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
  const __m256 cs1 = _mm256_blendv_ps(cs, _mm256_xor_ps(sn, sign), odd);
  const __m256 sn1 = _mm256_blendv_ps(sn, cs, odd);
  const __m256 flip =
      _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(
                        _mm256_and_si256(q, _mm256_set1_epi32(2)), _mm256_set1_epi32(2))),
                    sign);
  cs = _mm256_xor_ps(cs1, flip);
  sn = _mm256_xor_ps(sn1, flip);
  _mm256_storeu_ps(z0, _mm256_mul_ps(r, cs));
  _mm256_storeu_ps(z1, _mm256_mul_ps(r, sn));
}

}  // namespace

NormalStream normal_stream(uint64_t seed, uint64_t stream) {
  const uint64_t k = mix64(seed ^ mix64((stream + 1) * 0x9e3779b97f4a7c15ULL));
  return {static_cast<uint32_t>(k), static_cast<uint32_t>(k >> 32)};
}

void normal_fill(const NormalStream& s, uint64_t first, int64_t n, float scale, float* dst) {
  if (n <= 0) return;
  check((first + static_cast<uint64_t>(n)) >> 33 == 0,
        "random weights: tensor too large for one sample stream");
  int64_t i = 0;
  float z0[8], z1[8];
  if (first & 1) {
    pair_scalar(s, static_cast<uint32_t>(first >> 1), z0, z1);
    dst[i++] = z1[0] * scale;
  }
  // Now first + i is even: sample first+i+2k+j is element j of pair (first+i)/2 + k.
  for (; i + 16 <= n; i += 16) {
    pairs_avx2(s, static_cast<uint32_t>((first + static_cast<uint64_t>(i)) >> 1), z0, z1);
    for (int k = 0; k < 8; ++k) {
      dst[i + 2 * k] = z0[k] * scale;
      dst[i + 2 * k + 1] = z1[k] * scale;
    }
  }
  for (; i < n; i += 2) {
    pair_scalar(s, static_cast<uint32_t>((first + static_cast<uint64_t>(i)) >> 1), z0, z1);
    dst[i] = z0[0] * scale;
    if (i + 1 < n) dst[i + 1] = z1[0] * scale;
  }
}

float random_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  float z0, z1;
  pair_scalar(normal_stream(seed, stream), static_cast<uint32_t>(index >> 1), &z0, &z1);
  return (index & 1) ? z1 : z0;
}

}  // namespace nucleus
