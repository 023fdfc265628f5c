// Compiled with -ffp-contract=off (CMakeLists.txt): dequantization must round
// each product separately, as gguf-py's numpy code does.
#include "kernels/kquant.h"

#include <cmath>
#include <cstring>

#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus::kernels {

const int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                               1,    13,   25,  38,  53,  69,  89,  113};

namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// Q4_K / Q5_K: eight 6-bit (scale, min) pairs packed into 12 bytes.
void scale_min_k4(const uint8_t* s, int k, int& sc, int& mn) {
  if (k < 4) {
    sc = s[k] & 63;
    mn = s[k + 4] & 63;
  } else {
    sc = (s[k + 4] & 0x0f) | ((s[k - 4] >> 6) << 4);
    mn = (s[k + 4] >> 4) | ((s[k] >> 6) << 4);
  }
}

// Q3_K: sixteen 6-bit scales (stored + 32) packed into 12 bytes.
int scale_q3k(const uint8_t* s, int k) {
  const int lo = k < 8 ? s[k] & 0x0f : s[k - 8] >> 4;
  const int hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (lo | hi << 4) - 32;
}

// Stored integer value of element e (0..255) of one super-block, and its
// sub-block scale and min as ggml defines them.
struct SuperView {
  DType t;
  const uint8_t* b;
  int q(int e) const {
    switch (t) {
      case DType::Q2_K:
        return (b[16 + (e / 128) * 32 + e % 32] >> (2 * ((e / 32) % 4))) & 3;
      case DType::Q3_K: {
        const int lo = (b[32 + (e / 128) * 32 + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        const int hbit = (b[e % 32] >> (e / 32)) & 1;
        return lo + 4 * hbit;  // value − 4: ggml subtracts 4 when the mask bit is clear
      }
      case DType::Q4_K:
        return (b[16 + (e / 64) * 32 + e % 32] >> (4 * ((e / 32) % 2))) & 15;
      case DType::Q5_K: {
        const int lo = (b[48 + (e / 64) * 32 + e % 32] >> (4 * ((e / 32) % 2))) & 15;
        return lo | ((b[16 + e % 32] >> (e / 32)) & 1) << 4;
      }
      case DType::Q6_K: {
        const int lo = (b[(e / 128) * 64 + e % 64] >> (4 * ((e / 64) % 2))) & 15;
        const int hi = (b[128 + (e / 128) * 32 + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        return lo | hi << 4;
      }
      case DType::IQ4_XS:
        return (b[8 + (e / 32) * 16 + e % 16] >> (4 * ((e / 16) % 2))) & 15;
      default:
        return 0;
    }
  }
  // Scale of the 16-element sub-block k (0..15).
  int scale(int k) const {
    int sc = 0, mn = 0;
    switch (t) {
      case DType::Q2_K:
        return b[k] & 15;
      case DType::Q3_K:
        return scale_q3k(b + 96, k);
      case DType::Q4_K:
      case DType::Q5_K:
        scale_min_k4(b + 4, k / 2, sc, mn);
        return sc;
      case DType::Q6_K:
        return static_cast<int8_t>(b[192 + k]);
      case DType::IQ4_XS: {
        const int j = k / 2;
        uint16_t h;
        std::memcpy(&h, b + 2, 2);
        const int lo = (b[4 + j / 2] >> (4 * (j % 2))) & 15;
        return (lo | ((h >> (2 * j)) & 3) << 4) - 32;
      }
      default:
        return 0;
    }
  }
  int min(int k) const {
    int sc = 0, mn = 0;
    switch (t) {
      case DType::Q2_K:
        return b[k] >> 4;
      case DType::Q4_K:
      case DType::Q5_K:
        scale_min_k4(b + 4, k / 2, sc, mn);
        return mn;
      default:
        return 0;
    }
  }
  float d() const {
    switch (t) {
      case DType::Q2_K:
        return f16_at(b + 80);
      case DType::Q3_K:
        return f16_at(b + 108);
      case DType::Q6_K:
        return f16_at(b + 208);
      default:
        return f16_at(b);
    }
  }
  float dmin() const {
    if (t == DType::Q2_K) return f16_at(b + 82);
    if (t == DType::Q4_K || t == DType::Q5_K) return f16_at(b + 2);
    return 0.0f;
  }
};

// Legacy 32-element blocks: stored value of element e (0..31).
int legacy_q(DType t, const uint8_t* b, int e) {
  const uint8_t* qs = b + (t == DType::Q5_0 ? 6 : t == DType::Q5_1 ? 8 : t == DType::Q4_1 ? 4 : 2);
  const int nib = (qs[e % 16] >> (4 * (e / 16))) & 15;
  if (t == DType::Q5_0 || t == DType::Q5_1) {
    uint32_t qh;
    std::memcpy(&qh, b + (t == DType::Q5_0 ? 2 : 4), 4);
    return nib | static_cast<int>((qh >> e) & 1) << 4;
  }
  return nib;
}

}  // namespace

bool is_kquant(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::IQ4_NL:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

bool is_super_block_type(DType t) {
  return is_kquant(t) && dtype_info(t).block_elems == kSuperBlock;
}

KquantTraits kquant_traits(DType t) {
  switch (t) {
    case DType::Q4_1:
    case DType::Q5_1:
      return {32, 0, true, false};
    case DType::Q5_0:
      return {32, 16, false, false};
    case DType::IQ4_NL:
      return {32, 128, false, true};
    case DType::Q2_K:
    case DType::Q4_K:
    case DType::Q5_K:
      return {256, 0, true, false};
    case DType::Q3_K:
      return {256, 4, false, false};
    case DType::Q6_K:
      return {256, 32, false, false};
    case DType::IQ4_XS:
      return {256, 128, false, true};
    default:
      throw Error(std::string("kquant: unsupported type ") + dtype_name(t));
  }
}

void dequantize_row_kquant(DType t, const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  const DTypeInfo& info = dtype_info(t);
  const int64_t nb = n / info.block_elems;
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* b = p + i * info.block_bytes;
    float* y = dst + i * info.block_elems;
    if (!is_super_block_type(t)) {
      const float d = f16_at(b);
      const float m = (t == DType::Q4_1 || t == DType::Q5_1) ? f16_at(b + 2) : 0.0f;
      for (int e = 0; e < 32; ++e) {
        const int q = legacy_q(t, b, e);
        switch (t) {
          case DType::Q4_1:
          case DType::Q5_1:
            y[e] = d * static_cast<float>(q) + m;
            break;
          case DType::Q5_0:
            y[e] = d * static_cast<float>(q - 16);
            break;
          default:  // IQ4_NL
            y[e] = d * static_cast<float>(kIq4Values[q]);
        }
      }
      continue;
    }
    const SuperView v{t, b};
    const float d = v.d(), dmin = v.dmin();
    for (int k = 0; k < 16; ++k) {
      // gguf-py: dl = d·scale and ml = dmin·min per sub-block, then dl·q − ml.
      const float dl = d * static_cast<float>(v.scale(k));
      const float ml = dmin * static_cast<float>(v.min(k));
      for (int e = 16 * k; e < 16 * k + 16; ++e) {
        const int q = v.q(e);
        switch (t) {
          case DType::Q2_K:
          case DType::Q4_K:
          case DType::Q5_K:
            y[e] = dl * static_cast<float>(q) - ml;
            break;
          case DType::Q3_K:
            y[e] = dl * static_cast<float>(q - 4);
            break;
          case DType::Q6_K:
            y[e] = dl * static_cast<float>(q - 32);
            break;
          default:  // IQ4_XS
            y[e] = dl * static_cast<float>(kIq4Values[q]);
        }
      }
    }
  }
}

bool kquant_scales_finite(DType t, const void* src, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  const DTypeInfo& info = dtype_info(t);
  auto ok = [](const uint8_t* q) {
    uint16_t h;
    std::memcpy(&h, q, 2);
    return (h & 0x7c00) != 0x7c00;
  };
  for (int64_t i = 0; i < n / info.block_elems; ++i) {
    const uint8_t* b = p + i * info.block_bytes;
    bool good = true;
    switch (t) {
      case DType::Q2_K:
        good = ok(b + 80) && ok(b + 82);
        break;
      case DType::Q3_K:
        good = ok(b + 108);
        break;
      case DType::Q6_K:
        good = ok(b + 208);
        break;
      case DType::Q4_1:
      case DType::Q5_1:
      case DType::Q4_K:
      case DType::Q5_K:
        good = ok(b) && ok(b + 2);
        break;
      default:
        good = ok(b);
    }
    if (!good) return false;
  }
  return true;
}

void unpack_super(DType t, const uint8_t* row, int64_t s, IntBlock& out) {
  const SuperView v{t, row + s * dtype_info(t).block_bytes};
  const bool table = t == DType::IQ4_XS;
  for (int e = 0; e < kSuperBlock; ++e) {
    const int q = v.q(e);
    out.u[e] = static_cast<uint8_t>(table ? kIq4Values[q] + 128 : q);
  }
  for (int k = 0; k < 16; ++k) {
    out.sc[k] = static_cast<int16_t>(v.scale(k));
    out.mn[k] = static_cast<int16_t>(v.min(k));
  }
  out.d[0] = v.d();
  out.m[0] = v.dmin();
}

void unpack_legacy(DType t, const uint8_t* row, int64_t b0, int nb, IntBlock& out) {
  const int64_t bb = dtype_info(t).block_bytes;
  for (int j = 0; j < nb; ++j) {
    const uint8_t* b = row + (b0 + j) * bb;
    for (int e = 0; e < 32; ++e) {
      const int q = legacy_q(t, b, e);
      out.u[32 * j + e] = static_cast<uint8_t>(t == DType::IQ4_NL ? kIq4Values[q] + 128 : q);
    }
    out.d[j] = f16_at(b);
    out.m[j] = (t == DType::Q4_1 || t == DType::Q5_1) ? f16_at(b + 2) : 0.0f;
  }
}

}  // namespace nucleus::kernels
