// Quantizers for the K-quant and legacy types nucleus writes. Q4_1, Q5_0 and
// Q5_1 follow ggml's reference rules (min/max range, round half up). The
// K-quants search each sub-block's scale (and min) for the least squared
// error, then quantize the sub-block scales against an f16 super-scale and
// requantize the elements with the scales actually stored.
// Compiled with -ffp-contract=off (CMakeLists.txt) so results do not depend
// on the compiler's choice to fuse.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/dtype.h"
#include "kernels/kquant.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

void put_f16(uint8_t* p, float f) {
  const uint16_t h = fp32_to_fp16(f);
  std::memcpy(p, &h, 2);
}
float f16_round(float f) {
  return fp16_to_fp32(fp32_to_fp16(f));
}
int nearest(float f) {
  return static_cast<int>(std::lround(f));
}

// Legacy blocks: stored values q[32] into the nibble (+ high bit) layout.
void pack_legacy(const int* q, uint8_t* qs, uint8_t* qh) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((q[j] & 15) | (q[j + 16] & 15) << 4);
  if (qh != nullptr) {
    uint32_t h = 0;
    for (int j = 0; j < 32; ++j) h |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    std::memcpy(qh, &h, 4);
  }
}

void quantize_legacy(DType t, const float* x, uint8_t* b) {
  int q[32];
  if (t == DType::Q5_0) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j)
      q[j] = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
    put_f16(b, d);
    pack_legacy(q, b + 6, b + 2);
    return;
  }
  const int nmax = t == DType::Q4_1 ? 15 : 31;
  float lo = x[0], hi = x[0];
  for (int j = 1; j < 32; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  const float d = (hi - lo) / static_cast<float>(nmax);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j) q[j] = std::min(nmax, static_cast<int>((x[j] - lo) * id + 0.5f));
  put_f16(b, d);
  put_f16(b + 2, lo);
  pack_legacy(q, b + (t == DType::Q4_1 ? 4 : 8), t == DType::Q4_1 ? nullptr : b + 4);
}

// Best (a, b) with x ≈ a·q − b, q ∈ [0, nmax], b ≥ 0, over n elements: tries
// a range of grid placements, fits a and b by least squares for each
// candidate rounding and keeps the one with the least squared error.
void fit_scale_min(const float* x, int n, int nmax, float& a_out, float& b_out) {
  float lo = 0.0f, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  a_out = 0.0f;
  b_out = -lo;
  if (hi <= lo) return;
  double best = -1.0;
  for (int k = -10; k <= 10; ++k) {
    const float iscale = (static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / (hi - lo);
    double sq = 0, sqq = 0, sx = 0, sqx = 0;
    int q[256];
    for (int i = 0; i < n; ++i) {
      q[i] = std::clamp(nearest(iscale * (x[i] - lo)), 0, nmax);
      sq += q[i];
      sqq += static_cast<double>(q[i]) * q[i];
      sx += x[i];
      sqx += static_cast<double>(q[i]) * x[i];
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) continue;
    double a = (n * sqx - sq * sx) / det;
    double c = (sqq * sx - sq * sqx) / det;  // x ≈ a·q + c
    if (c > 0) {
      c = 0;
      a = sqq > 0 ? sqx / sqq : 0;
    }
    if (a <= 0) continue;
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const double e = a * q[i] + c - x[i];
      err += e * e;
    }
    if (best < 0 || err < best) {
      best = err;
      a_out = static_cast<float>(a);
      b_out = static_cast<float>(-c);
    }
  }
}

// Best signed scale a with x ≈ a·q, q ∈ [-nneg, nneg − 1].
float fit_scale_signed(const float* x, int n, int nneg) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax == 0.0f) return 0.0f;
  double best = -1.0;
  float best_a = 0.0f;
  for (int k = -10; k <= 10; ++k) {
    const float iscale = -(static_cast<float>(nneg) + 0.1f * static_cast<float>(k)) / max;
    double sqq = 0, sqx = 0;
    int q[32];
    for (int i = 0; i < n; ++i) {
      q[i] = std::clamp(nearest(iscale * x[i]), -nneg, nneg - 1);
      sqq += static_cast<double>(q[i]) * q[i];
      sqx += static_cast<double>(q[i]) * x[i];
    }
    if (sqq <= 0) continue;
    const double a = sqx / sqq;
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const double e = a * q[i] - x[i];
      err += e * e;
    }
    if (best < 0 || err < best) {
      best = err;
      best_a = static_cast<float>(a);
    }
  }
  return best_a;
}

// Q4_K / Q5_K super-block.
void quantize_q45k(DType t, const float* x, uint8_t* b) {
  const int nmax = t == DType::Q4_K ? 15 : 31;
  float a[8], m[8];
  float amax = 0.0f, mmax = 0.0f;
  for (int j = 0; j < 8; ++j) {
    fit_scale_min(x + 32 * j, 32, nmax, a[j], m[j]);
    amax = std::max(amax, a[j]);
    mmax = std::max(mmax, m[j]);
  }
  const float d = f16_round(amax / 63.0f);
  const float dmin = f16_round(mmax / 63.0f);
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0 ? std::clamp(nearest(a[j] / d), 0, 63) : 0;
    mn[j] = dmin > 0 ? std::clamp(nearest(m[j] / dmin), 0, 63) : 0;
  }
  put_f16(b, d);
  put_f16(b + 2, dmin);
  uint8_t* s = b + 4;
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
    s[j + 4] = static_cast<uint8_t>((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
  }
  uint8_t* qs = b + (t == DType::Q4_K ? 16 : 48);
  uint8_t* qh = t == DType::Q5_K ? b + 16 : nullptr;
  std::memset(qs, 0, 128);
  if (qh != nullptr) std::memset(qh, 0, 32);
  for (int e = 0; e < kSuperBlock; ++e) {
    const int j = e / 32;
    const float step = d * static_cast<float>(sc[j]);
    const float off = dmin * static_cast<float>(mn[j]);
    const int q = step > 0 ? std::clamp(nearest((x[e] + off) / step), 0, nmax) : 0;
    qs[(e / 64) * 32 + e % 32] |= static_cast<uint8_t>((q & 15) << (4 * ((e / 32) % 2)));
    if (qh != nullptr) qh[e % 32] |= static_cast<uint8_t>(((q >> 4) & 1) << (e / 32));
  }
}

void quantize_q6k(const float* x, uint8_t* b) {
  float a[16];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 16; ++j) {
    a[j] = fit_scale_signed(x + 16 * j, 16, 32);
    if (std::fabs(a[j]) > amax) {
      amax = std::fabs(a[j]);
      max = a[j];
    }
  }
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  auto* scales = reinterpret_cast<int8_t*>(b + 192);
  std::memset(b, 0, 208);
  if (amax == 0.0f) {
    put_f16(b + 208, 0.0f);
    for (int e = 0; e < kSuperBlock; ++e) {  // q = 32 stands for zero
      ql[(e / 128) * 64 + e % 64] |= 0;
      qh[(e / 128) * 32 + e % 32] |= static_cast<uint8_t>(2 << (2 * ((e / 32) % 4)));
    }
    return;
  }
  const float iscale = -128.0f / max;
  const float d = f16_round(1.0f / iscale);
  put_f16(b + 208, d);
  for (int j = 0; j < 16; ++j)
    scales[j] = static_cast<int8_t>(std::min(127, nearest(iscale * a[j])));
  for (int e = 0; e < kSuperBlock; ++e) {
    const float step = d * static_cast<float>(scales[e / 16]);
    const int v = step != 0.0f ? std::clamp(nearest(x[e] / step), -32, 31) : 0;
    const int q = v + 32;
    ql[(e / 128) * 64 + e % 64] |= static_cast<uint8_t>((q & 15) << (4 * ((e / 64) % 2)));
    qh[(e / 128) * 32 + e % 32] |= static_cast<uint8_t>((q >> 4) << (2 * ((e / 32) % 4)));
  }
}

}  // namespace

bool kquant_can_quantize(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row_kquant(DType t, const float* src, void* dst, int64_t n) {
  if (!kquant_can_quantize(t))
    throw Error(std::string("quantize: nucleus cannot write ") + dtype_name(t) +
                " (it reads it; writable: q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)");
  const DTypeInfo& info = dtype_info(t);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / info.block_elems; ++i) {
    const float* x = src + i * info.block_elems;
    uint8_t* b = out + i * info.block_bytes;
    if (t == DType::Q6_K) {
      quantize_q6k(x, b);
    } else if (t == DType::Q4_K || t == DType::Q5_K) {
      quantize_q45k(t, x, b);
    } else {
      quantize_legacy(t, x, b);
    }
  }
}

}  // namespace nucleus::kernels
