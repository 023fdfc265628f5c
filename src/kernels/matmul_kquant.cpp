// Driver and scalar reference for K-quant / legacy-type matrix products
// (see matmul_kquant.h for the reduction every path performs).
#include "kernels/matmul_kquant.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/dtype.h"

namespace nucleus::kernels::detail {

size_t kq_act_row_bytes(DType t, int64_t cols) {
  const int a = kquant_traits(t).act_block;
  const size_t n = static_cast<size_t>(cols);
  return (n + 4 * (n / static_cast<size_t>(a)) + 2 * (n / 16) + 63) / 64 * 64;
}

void kq_quantize_activation(DType t, const float* x, int64_t cols, uint8_t* out) {
  const int a = kquant_traits(t).act_block;
  auto* q = reinterpret_cast<int8_t*>(out);
  auto* dx = reinterpret_cast<float*>(out + cols);
  auto* bs = reinterpret_cast<int16_t*>(out + cols + 4 * (cols / a));
  for (int64_t b = 0; b < cols / a; ++b) {
    const float* xb = x + b * a;
    int8_t* qb = q + b * a;
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < a; ++i) {
      if (std::fabs(xb[i]) > amax) {
        amax = std::fabs(xb[i]);
        max = xb[i];
      }
    }
    if (amax == 0.0f) {
      dx[b] = 0.0f;
      std::fill(qb, qb + a, int8_t{0});
    } else if (a == kSuperBlock) {
      // ggml's Q8_K: the signed extreme maps to -127, ties round to even.
      const float iscale = -127.0f / max;
      for (int i = 0; i < a; ++i)
        qb[i] = static_cast<int8_t>(std::min(127.0f, std::nearbyint(iscale * xb[i])));
      dx[b] = 1.0f / iscale;
    } else {
      // ggml's Q8_0 / Q8_1: ties away from zero, the scale used is f16-rounded.
      const float d = amax / 127.0f;
      const float id = 1.0f / d;
      for (int i = 0; i < a; ++i) qb[i] = static_cast<int8_t>(std::roundf(xb[i] * id));
      dx[b] = fp16_to_fp32(fp32_to_fp16(d));
    }
  }
  for (int64_t k = 0; k < cols / 16; ++k) {
    int s = 0;
    for (int i = 0; i < 16; ++i) s += q[16 * k + i];
    bs[k] = static_cast<int16_t>(s);
  }
}

float kq_dot_reference(DType t, const uint8_t* wrow, const uint8_t* act, int64_t cols) {
  const KquantTraits tr = kquant_traits(t);
  const KqActView x = kq_act_view(act, cols, tr.act_block);
  IntBlock blk;
  float acc = 0.0f;
  if (is_super_block_type(t)) {
    for (int64_t s = 0; s < cols / kSuperBlock; ++s) {
      unpack_super(t, wrow, s, blk);
      const int8_t* q = x.q + s * kSuperBlock;
      const int16_t* bs = x.bs + s * 16;
      int32_t isum = 0, msum = 0;
      for (int k = 0; k < 16; ++k) {
        int32_t dot = 0;
        for (int i = 16 * k; i < 16 * k + 16; ++i) dot += blk.u[i] * q[i];
        isum += blk.sc[k] * (dot - tr.offset * bs[k]);
        msum += blk.mn[k] * bs[k];
      }
      const float dx = x.dx[s];
      acc = std::fma(static_cast<float>(isum), blk.d[0] * dx, acc);
      if (tr.has_min) acc = std::fma(static_cast<float>(-msum), blk.m[0] * dx, acc);
    }
    return acc;
  }
  const int64_t nb = cols / 32;
  for (int64_t b0 = 0; b0 < nb; b0 += 8) {
    const int cnt = static_cast<int>(std::min<int64_t>(8, nb - b0));
    unpack_legacy(t, wrow, b0, cnt, blk);
    for (int j = 0; j < cnt; ++j) {
      const int64_t b = b0 + j;
      const int32_t bsum = x.bs[2 * b] + x.bs[2 * b + 1];
      int32_t dot = 0;
      for (int i = 0; i < 32; ++i) dot += blk.u[32 * j + i] * x.q[32 * b + i];
      const float dx = x.dx[b];
      acc = std::fma(static_cast<float>(dot - tr.offset * bsum), blk.d[j] * dx, acc);
      if (tr.has_min) acc = std::fma(static_cast<float>(bsum), blk.m[j] * dx, acc);
    }
  }
  return acc;
}

void matmul_kquant_reference(const Matrix& w, const float* x, int64_t n, float* y) {
  std::vector<uint8_t> act(kq_act_row_bytes(w.type, w.cols));
  const size_t stride = row_bytes(w.type, w.cols);
  for (int64_t r = 0; r < n; ++r) {
    kq_quantize_activation(w.type, x + r * w.cols, w.cols, act.data());
    for (int64_t o = 0; o < w.rows; ++o)
      y[r * w.rows + o] =
          kq_dot_reference(w.type, w.data + static_cast<size_t>(o) * stride, act.data(), w.cols);
  }
}

void matmul_kquant(bool avx512, const Matrix& w, const float* x, int64_t n, float* y,
                   ThreadPool& pool, MatmulWorkspace& ws) {
  KqArgs a;
  a.w = &w;
  a.w_stride = row_bytes(w.type, w.cols);
  a.act_stride = kq_act_row_bytes(w.type, w.cols);
  a.n = n;
  a.y = y;
  uint8_t* act = ws.reserve(a.act_stride * static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r)
    kq_quantize_activation(w.type, x + r * w.cols, w.cols, act + r * a.act_stride);
  a.act = act;
  // As for the other types: enough work per task to be worth a wake-up, and
  // about 8 tasks per thread.
  constexpr int64_t kMinMacsPerTask = int64_t{1} << 16;
  const int64_t min_rows = (kMinMacsPerTask + w.cols * n - 1) / std::max<int64_t>(1, w.cols * n);
  const int64_t want_rows = (w.rows + 8 * pool.size() - 1) / (8 * pool.size());
  struct Job {
    KqArgs a;
    int64_t per_task;
    void (*run)(const KqArgs&, int64_t, int64_t);
  } job{a, std::max<int64_t>({4, want_rows, min_rows}), avx512 ? kq_rows_avx512 : kq_rows_avx2};
  const int64_t n_tasks = (w.rows + job.per_task - 1) / job.per_task;
  // One reference capture keeps std::function from allocating.
  pool.parallel_for(n_tasks, [&job](int64_t task) {
    const int64_t o0 = task * job.per_task;
    job.run(job.a, o0, std::min(job.a.w->rows, o0 + job.per_task));
  });
}

}  // namespace nucleus::kernels::detail
