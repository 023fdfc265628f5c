#include "kernels/matmul.h"

#include <immintrin.h>

#include <algorithm>
#include <string>

#include "kernels/dtype.h"
#include "kernels/matmul_isa.h"
#include "util/cpu_features.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

bool is_quantized(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0;
}

// Quantized weights: activations are quantized per 32-block to Q8_0 and the
// block products are summed in integers, then scaled — as ggml does.
float dot_q8_blocks(DType t, const uint8_t* wrow, const BlockQ8_0* xq, int64_t nb) {
  float sum = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t isum = 0;
    float dw;
    if (t == DType::Q8_0) {
      const auto& blk = reinterpret_cast<const BlockQ8_0*>(wrow)[b];
      dw = fp16_to_fp32(blk.d);
      for (int j = 0; j < kQBlock; ++j) isum += blk.qs[j] * xq[b].qs[j];
    } else {
      const auto& blk = reinterpret_cast<const BlockQ4_0*>(wrow)[b];
      dw = fp16_to_fp32(blk.d);
      for (int j = 0; j < kQBlock / 2; ++j) {
        isum += ((blk.qs[j] & 0x0f) - 8) * xq[b].qs[j];
        isum += ((blk.qs[j] >> 4) - 8) * xq[b].qs[j + kQBlock / 2];
      }
    }
    sum += dw * fp16_to_fp32(xq[b].d) * static_cast<float>(isum);
  }
  return sum;
}

void check_matrix(const char* what, const Matrix& w, const float* x, int64_t n, const float* y) {
  std::string msg;
  if (w.type != DType::F32 && w.type != DType::F16 && w.type != DType::BF16 &&
      !is_quantized(w.type)) {
    msg = what;
    msg += ": unsupported weight type id ";
    msg += std::to_string(static_cast<uint32_t>(w.type));
  } else if (w.rows < 0 || w.cols < 0 || n < 0) {
    msg = what;
    msg += ": negative size (rows ";
    msg += std::to_string(w.rows);
    msg += ", cols ";
    msg += std::to_string(w.cols);
    msg += ", n ";
    msg += std::to_string(n);
    msg += ")";
  } else if (is_quantized(w.type) && w.cols % kQBlock != 0) {
    msg = what;
    msg += ": ";
    msg += dtype_name(w.type);
    msg += " weight row length ";
    msg += std::to_string(w.cols);
    msg += " is not a multiple of 32";
  } else if (w.rows > 0 && w.cols > 0 &&
             (w.data == nullptr || (n > 0 && (x == nullptr || y == nullptr)))) {
    msg = what;
    msg += ": null weight, input or output pointer";
  }
  if (!msg.empty()) throw Error(msg);
}

}  // namespace

void matmul_reference(const Matrix& w, const float* x, int64_t n, float* y) {
  check_matrix("matmul_reference", w, x, n, y);
  std::vector<float> tmp(static_cast<size_t>(w.cols));
  std::vector<BlockQ8_0> xq(static_cast<size_t>(w.cols / kQBlock + 1));
  const bool quant = is_quantized(w.type);
  const size_t stride = row_bytes(w.type, w.cols);
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * w.cols;
    if (quant) quantize_row(DType::Q8_0, xr, xq.data(), w.cols);
    for (int64_t o = 0; o < w.rows; ++o) {
      const uint8_t* wrow = w.data + static_cast<size_t>(o) * stride;
      if (quant) {
        y[r * w.rows + o] = dot_q8_blocks(w.type, wrow, xq.data(), w.cols / kQBlock);
        continue;
      }
      dequantize_row(w.type, wrow, tmp.data(), w.cols);
      float sum = 0.0f;
      for (int64_t i = 0; i < w.cols; ++i) sum += tmp[i] * xr[i];
      y[r * w.rows + o] = sum;
    }
  }
}

namespace detail {

void quantize_activation_row(const float* x, int64_t cols, uint8_t* out, int start_scale) {
  const int64_t nb = cols / kQBlock;
  const int64_t nbp = act_blocks_padded(cols);
  auto* scales = reinterpret_cast<float*>(out + nbp * kQBlock);
  auto* starts = reinterpret_cast<int32_t*>(out + nbp * kQBlock * 2);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i neg_scale16 = _mm256_set1_epi16(static_cast<int16_t>(-start_scale));
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQBlock;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    // max is exact, so the lane order does not matter: same amax as the scalar loop.
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const float d = _mm_cvtss_f32(m4) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      // roundf (half away from zero): truncate, then step away from zero when
      // the exact remainder is at least one half.
      const __m256 s = _mm256_mul_ps(v[k], idv);
      const __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(s, t));
      const __m256 step = _mm256_or_ps(_mm256_and_ps(s, sign), one);
      const __m256 r = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), step));
      q[k] = _mm256_cvttps_epi32(r);
    }
    const __m256i p16 =
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    const __m256i p8 = _mm256_permutevar8x32_epi32(p16, order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * kQBlock), p8);
    _mm256_storeu_ps(scales + b * 8, _mm256_set1_ps(fp16_to_fp32(fp32_to_fp16(d))));
    // |sum of 4| <= 508, times start_scale <= 128: fits int32 (and the pair sums int16).
    const __m256i start = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, p8), neg_scale16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(starts + b * 8), start);
  }
  for (int64_t b = nb; b < nbp; ++b) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * kQBlock), _mm256_setzero_si256());
    _mm256_storeu_ps(scales + b * 8, _mm256_setzero_ps());
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(starts + b * 8), _mm256_setzero_si256());
  }
}

}  // namespace detail

const char* matmul_isa_name(MatmulIsa isa) {
  return isa == MatmulIsa::kAvx512 ? "avx512" : "avx2";
}

bool matmul_isa_supported(MatmulIsa isa) {
  const CpuFeatures& f = cpu_features();
  const bool avx2 = f.avx2 && f.fma && f.f16c;
  if (isa == MatmulIsa::kAvx2) return avx2;
  return avx2 && f.has_avx512_core() && f.avx512vnni;
}

MatmulIsa matmul_default_isa() {
  static const MatmulIsa isa =
      matmul_isa_supported(MatmulIsa::kAvx512) ? MatmulIsa::kAvx512 : MatmulIsa::kAvx2;
  return isa;
}

void matmul(MatmulIsa isa, const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            MatmulWorkspace& ws) {
  check_matrix("matmul", w, x, n, y);
  if (!matmul_isa_supported(isa)) {
    std::string msg = "matmul: this CPU does not support the ";
    msg += matmul_isa_name(isa);
    msg += " code path";
    throw Error(msg);
  }
  if (n == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    std::fill(y, y + n * w.rows, 0.0f);
    return;
  }
  struct Job {
    detail::MatmulArgs args;
    int64_t rows_per_task;
    void (*rows)(const detail::MatmulArgs&, int64_t, int64_t);
  } job;
  job.args.w = &w;
  job.args.w_stride = row_bytes(w.type, w.cols);
  job.args.x = x;
  job.args.n = n;
  job.args.y = y;
  job.rows = isa == MatmulIsa::kAvx512 ? detail::matmul_rows_avx512 : detail::matmul_rows_avx2;
  if (is_quantized(w.type)) {
    // AVX-512 offsets weights to unsigned: Q8_0 by 128, Q4_0 nibbles are already q + 8.
    const int start_scale = isa == MatmulIsa::kAvx512 ? (w.type == DType::Q8_0 ? 128 : 8) : 0;
    job.args.act_stride = detail::act_row_bytes(w.cols);
    uint8_t* act = ws.reserve(job.args.act_stride * static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r)
      detail::quantize_activation_row(x + r * w.cols, w.cols, act + r * job.args.act_stride,
                                      start_scale);
    job.args.act = act;
  }
  // Tasks are chunks of whole output rows (a multiple of 4, the row group of
  // the tiled kernels); about 8 per thread so a slow thread is waited on less.
  const int64_t want = (w.rows + 8 * pool.size() - 1) / (8 * pool.size());
  // A task should hold enough multiply-adds to be worth waking a thread for
  // (small models otherwise run slower on two threads than on one).
  constexpr int64_t kMinMacsPerTask = int64_t{1} << 16;
  const int64_t min_rows = (kMinMacsPerTask + w.cols * n - 1) / std::max<int64_t>(1, w.cols * n);
  job.rows_per_task = std::max<int64_t>({16, (want + 3) / 4 * 4, (min_rows + 3) / 4 * 4});
  const int64_t n_tasks = (w.rows + job.rows_per_task - 1) / job.rows_per_task;
  // One reference capture keeps std::function from allocating.
  pool.parallel_for(n_tasks, [&job](int64_t task) {
    const int64_t o0 = task * job.rows_per_task;
    job.rows(job.args, o0, std::min(job.args.w->rows, o0 + job.rows_per_task));
  });
}

void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            MatmulWorkspace& ws) {
  matmul(matmul_default_isa(), w, x, n, y, pool, ws);
}

}  // namespace nucleus::kernels
