#include "kernels/matmul_bf16dot.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "util/cpu_features.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A BF16 input as vdpbf16ps reads it: denormals are zero (DAZ).
float bf16_daz(uint16_t h) {
  if ((h & 0x7f80u) == 0) h &= 0x8000u;
  return bits_to_float(static_cast<uint32_t>(h) << 16);
}

// A step result as vdpbf16ps writes it: denormals flushed to signed zero.
float ftz(float f) {
  return std::fabs(f) < 0x1p-126f ? std::copysign(0.0f, f) : f;
}

void check_args(const char* what, const Matrix& w, const float* x, int64_t n, const float* y) {
  std::string msg;
  if (w.type != DType::BF16) {
    msg = std::string(what) + ": the BF16-dot definition takes only BF16 weights, not " +
          dtype_name(w.type);
  } else if (w.rows < 0 || w.cols < 0 || n < 0) {
    msg = std::string(what) + ": negative size (rows " + std::to_string(w.rows) + ", cols " +
          std::to_string(w.cols) + ", n " + std::to_string(n) + ")";
  } else if (w.rows > 0 && w.cols > 0 &&
             (w.data == nullptr || (n > 0 && (x == nullptr || y == nullptr)))) {
    msg = std::string(what) + ": null weight, input or output pointer";
  }
  if (!msg.empty()) throw Error(msg);
}

int64_t padded_cols(int64_t cols) {
  return (cols + 31) / 32 * 32;
}

}  // namespace

Bf16Dot parse_bf16_dot(const char* s) {
  const std::string v = s == nullptr ? "" : s;
  if (v == "auto") return Bf16Dot::kAuto;
  if (v == "on") return Bf16Dot::kOn;
  if (v == "off") return Bf16Dot::kOff;
  throw Error("bf16-dot: expected auto, on or off, got '" + v + "'");
}

const char* bf16_dot_name(Bf16Dot d) {
  return d == Bf16Dot::kAuto ? "auto" : (d == Bf16Dot::kOn ? "on" : "off");
}

uint16_t bf16dot_round(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);         // quiet NaN
  if ((x & 0x7f800000u) == 0) return static_cast<uint16_t>((x >> 16) & 0x8000u);  // zero/denormal
  if (mag == 0x7f800000u) return static_cast<uint16_t>(x >> 16);                  // infinity
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

bool bf16dot_isa_supported(Bf16DotIsa isa) {
  const CpuFeatures& f = cpu_features();
  if (isa == Bf16DotIsa::kAvx2) return f.avx2 && f.fma;
  // cpu_features() already clears the AVX-512 bits under NUCLEUS_NO_AVX512=1.
  return f.avx2 && f.fma && f.has_avx512_core() && f.avx512bf16;
}

Bf16DotIsa bf16dot_default_isa() {
  return bf16dot_isa_supported(Bf16DotIsa::kAvx512) ? Bf16DotIsa::kAvx512 : Bf16DotIsa::kAvx2;
}

double bf16dot_probe_ratio() {
  // Measured once: the answer cannot change while the process runs.
  static const double ratio =
      bf16dot_isa_supported(Bf16DotIsa::kAvx512) ? detail::bf16dot_probe_ratio_avx512() : 0.0;
  return ratio;
}

bool bf16dot_pays() {
  const CpuFeatures& f = cpu_features();
  return bf16dot_isa_supported(Bf16DotIsa::kAvx512) && f.amd && f.family >= 0x19;
}

bool bf16dot_enabled(Bf16Dot d) {
  if (d == Bf16Dot::kOn) return true;
  if (d == Bf16Dot::kOff) return false;
  return bf16dot_pays();
}

void matmul_bf16dot_reference(const Matrix& w, const float* x, int64_t n, float* y) {
  check_args("matmul_bf16dot_reference", w, x, n, y);
  const int64_t cp = padded_cols(w.cols);
  std::vector<uint16_t> xr(static_cast<size_t>(cp));
  const auto* wd = reinterpret_cast<const uint16_t*>(w.data);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < cp; ++i) xr[i] = i < w.cols ? bf16dot_round(x[r * w.cols + i]) : 0;
    for (int64_t o = 0; o < w.rows; ++o) {
      const uint16_t* wr = wd + o * w.cols;
      float l[16] = {};
      for (int64_t c = 0; c < cp; c += 32) {
        for (int j = 0; j < 16; ++j) {
          const int64_t i0 = c + 2 * j;
          const int64_t i1 = i0 + 1;
          const float w0 = i0 < w.cols ? bf16_daz(wr[i0]) : 0.0f;
          const float w1 = i1 < w.cols ? bf16_daz(wr[i1]) : 0.0f;
          l[j] = ftz(std::fma(w1, bf16_daz(xr[i1]), l[j]));
          l[j] = ftz(std::fma(w0, bf16_daz(xr[i0]), l[j]));
        }
      }
      for (int j = 0; j < 8; ++j) l[j] += l[j + 8];
      for (int j = 0; j < 4; ++j) l[j] += l[j + 4];
      for (int j = 0; j < 2; ++j) l[j] += l[j + 2];
      y[r * w.rows + o] = l[0] + l[1];
    }
  }
}

void matmul_bf16dot(Bf16DotIsa isa, const Matrix& w, const float* x, int64_t n, float* y,
                    ThreadPool& pool, MatmulWorkspace& ws) {
  check_args("matmul_bf16dot", w, x, n, y);
  if (!bf16dot_isa_supported(isa)) {
    throw Error(std::string("matmul_bf16dot: this CPU does not support the ") +
                (isa == Bf16DotIsa::kAvx512 ? "avx512-bf16" : "avx2") + " code path");
  }
  if (n == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    std::fill(y, y + n * w.rows, 0.0f);
    return;
  }
  const bool avx512 = isa == Bf16DotIsa::kAvx512;
  detail::Bf16DotArgs a;
  a.w = reinterpret_cast<const uint16_t*>(w.data);
  a.cols = w.cols;
  a.xstride = padded_cols(w.cols);
  a.n = n;
  a.rows = w.rows;
  a.y = y;
  auto* xb = reinterpret_cast<uint16_t*>(
      ws.reserve(static_cast<size_t>(a.xstride * n) * sizeof(uint16_t)));
  for (int64_t r = 0; r < n; ++r) {
    uint16_t* out = xb + r * a.xstride;
    const float* in = x + r * w.cols;
    if (avx512) {
      detail::bf16dot_round_row_avx512(in, w.cols, out);
    } else {
      for (int64_t i = 0; i < w.cols; ++i) out[i] = bf16dot_round(in[i]);
    }
    std::fill(out + w.cols, out + a.xstride, uint16_t{0});
  }
  a.x = xb;
  // Same task sizing as matmul.cpp: enough work per task to be worth a
  // wake-up, about 8 tasks per thread; whole multiples of 4 rows.
  constexpr int64_t kMinMacsPerTask = int64_t{1} << 16;
  const int64_t min_rows = (kMinMacsPerTask + w.cols * n - 1) / std::max<int64_t>(1, w.cols * n);
  const int64_t want_rows = (w.rows + 8 * pool.size() - 1) / (8 * pool.size());
  const int64_t per_task = std::max<int64_t>({16, (want_rows + 3) / 4 * 4, (min_rows + 3) / 4 * 4});
  const int64_t n_tasks = (w.rows + per_task - 1) / per_task;
  auto run = avx512 ? detail::bf16dot_rows_avx512 : detail::bf16dot_rows_avx2;
  struct Job {
    const detail::Bf16DotArgs* a;
    int64_t per_task;
    void (*run)(const detail::Bf16DotArgs&, int64_t, int64_t);
  } job{&a, per_task, run};
  pool.parallel_for(n_tasks, [&job](int64_t task) {
    const int64_t o0 = task * job.per_task;
    job.run(*job.a, o0, std::min(job.a->rows, o0 + job.per_task));
  });
}

void matmul_bf16dot(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
                    MatmulWorkspace& ws) {
  matmul_bf16dot(bf16dot_default_isa(), w, x, n, y, pool, ws);
}

}  // namespace nucleus::kernels
