#include "kernels/ops.h"

#include <immintrin.h>

#include <cmath>
#include <numbers>

#include "kernels/vec_math.h"
#include "util/error.h"

namespace nucleus::kernels {

void rmsnorm(float* out, const float* x, const float* weight, int64_t dim, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  for (int64_t i = 0; i < dim; ++i) out[i] = weight[i] * (x[i] * inv);
}

// Every element goes through exp8 (the tail through a padded copy), so a
// value never depends on where it sits in the batch.
void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  auto eight = [&](const float* g8, const float* u8, float* o8) {
    const __m256 g = _mm256_loadu_ps(g8);
    const __m256 e = exp8(_mm256_xor_ps(g, sign));
    _mm256_storeu_ps(o8,
                     _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(u8)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) eight(gate + i, up + i, out + i);
  if (i < n) {
    float g[8] = {}, u[8] = {}, o[8];
    for (int64_t t = i; t < n; ++t) {
      g[t - i] = gate[t];
      u[t - i] = up[t];
    }
    eight(g, u, o);
    for (int64_t t = i; t < n; ++t) out[t] = o[t - i];
  }
}

namespace {

// inv_freq[i] = theta^(-2i/d), then HF's rope_scaling adjustments.
std::vector<double> rope_inv_freq(const ModelConfig& cfg) {
  const int64_t half = cfg.head_dim / 2;
  std::vector<double> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    f[i] = 1.0 / std::pow(static_cast<double>(cfg.rope_theta),
                          static_cast<double>(2 * i) / static_cast<double>(cfg.head_dim));
  const RopeScaling& rs = cfg.rope_scaling;
  if (rs.kind == RopeScaling::Kind::Linear) {
    for (double& v : f) v /= rs.factor;
  } else if (rs.kind == RopeScaling::Kind::Llama3) {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept,
    // and the band in between interpolated smoothly.
    const double low_wavelen = rs.original_max_position / rs.low_freq_factor;
    const double high_wavelen = rs.original_max_position / rs.high_freq_factor;
    for (double& v : f) {
      const double wavelen = 2.0 * std::numbers::pi / v;
      if (wavelen > low_wavelen) {
        v /= rs.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (rs.original_max_position / wavelen - rs.low_freq_factor) /
                              (rs.high_freq_factor - rs.low_freq_factor);
        v = (1.0 - smooth) * v / rs.factor + smooth * v;
      }
    }
  }
  if (!rs.freq_factors.empty()) {
    check(static_cast<int64_t>(rs.freq_factors.size()) == half,
          "rope: " + std::to_string(rs.freq_factors.size()) + " frequency factors for head size " +
              std::to_string(cfg.head_dim));
    for (int64_t i = 0; i < half; ++i) f[i] /= rs.freq_factors[static_cast<size_t>(i)];
  }
  return f;
}

}  // namespace

RopeTable::RopeTable(const ModelConfig& cfg, int64_t max_positions)
    : head_dim_(cfg.head_dim),
      max_positions_(max_positions),
      layout_(cfg.rope_layout),
      inv_freq_(rope_inv_freq(cfg)) {
  const int64_t half = head_dim_ / 2;
  cos_.resize(static_cast<size_t>(max_positions * half));
  sin_.resize(cos_.size());
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      // HF computes the angle in float32 (position * inv_freq); do the same so
      // long positions round like the reference.
      const float angle = static_cast<float>(p) * static_cast<float>(inv_freq_[i]);
      cos_[p * half + i] = std::cos(angle);
      sin_[p * half + i] = std::sin(angle);
    }
  }
}

void RopeTable::apply(float* x, int64_t n_heads, int64_t pos) const {
  if (pos < 0 || pos >= max_positions_)
    throw Error("position " + std::to_string(pos) + " is beyond the context length " +
                std::to_string(max_positions_));
  const int64_t half = head_dim_ / 2;
  const float* c = cos_.data() + pos * half;
  const float* s = sin_.data() + pos * half;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim_;
    for (int64_t i = 0; i < half; ++i) {
      float* a;
      float* b;
      if (layout_ == RopeLayout::Interleaved) {
        a = v + 2 * i;
        b = v + 2 * i + 1;
      } else {
        a = v + i;
        b = v + i + half;
      }
      const float x0 = *a, x1 = *b;
      *a = x0 * c[i] - x1 * s[i];
      *b = x0 * s[i] + x1 * c[i];
    }
  }
}

}  // namespace nucleus::kernels
