#include "kernels/matmul.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/dtype.h"
#include "kernels/matmul_isa.h"
#include "kernels/matmul_kquant.h"
#include "util/cpu_features.h"
#include "util/error.h"

namespace nucleus::kernels {
namespace {

bool is_quantized(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0;
}

// Quantized weights: activations are quantized per 32-block to Q8_0 and the
// block products are summed in integers, then scaled — as ggml does — and
// accumulated block by block with one fma each (matmul_isa.h's order).
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
    sum = std::fma(static_cast<float>(isum), dw * fp16_to_fp32(xq[b].d), sum);
  }
  return sum;
}

void check_matrix(const char* what, const Matrix& w, const float* x, int64_t n, const float* y) {
  std::string msg;
  const DTypeInfo* info = dtype_info(static_cast<uint32_t>(w.type));
  if (info == nullptr || (w.type != DType::F32 && w.type != DType::F16 && w.type != DType::BF16 &&
                          !is_quantized(w.type) && !is_kquant(w.type))) {
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
  } else if (w.cols % info->block_elems != 0) {
    msg = what;
    msg += ": ";
    msg += dtype_name(w.type);
    msg += " weight row length ";
    msg += std::to_string(w.cols);
    msg += " is not a multiple of ";
    msg += std::to_string(info->block_elems);
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
  if (is_kquant(w.type)) return detail::matmul_kquant_reference(w, x, n, y);
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
  auto* scales = reinterpret_cast<float*>(out + nb * kQBlock);
  auto* starts = reinterpret_cast<int32_t*>(out + nb * (kQBlock + 4));
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
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
    scales[b] = fp16_to_fp32(fp32_to_fp16(d));
    // Σ q of the block: pairs, then quads (int16 cannot overflow: |q| ≤ 127).
    const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, p8), ones16);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    starts[b] = -start_scale * _mm_cvtsi128_si32(s4);
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
  if (is_kquant(w.type))
    return detail::matmul_kquant(isa == MatmulIsa::kAvx512, w, x, n, y, pool, ws);
  struct Job {
    detail::MatmulArgs args;
    int64_t units_per_task;  // rows (float types) or 16-row groups (quantized)
    int64_t units;
    void (*run)(const detail::MatmulArgs&, int64_t, int64_t);
  } job;
  job.args.w = &w;
  job.args.w_stride = row_bytes(w.type, w.cols);
  job.args.x = x;
  job.args.n = n;
  job.args.y = y;
  const bool avx512 = isa == MatmulIsa::kAvx512;
  // A task should hold enough multiply-adds to be worth waking a thread for
  // (small models otherwise run slower on two threads than on one), and there
  // should be about 8 per thread so a slow thread is waited on less.
  constexpr int64_t kMinMacsPerTask = int64_t{1} << 16;
  const int64_t min_rows = (kMinMacsPerTask + w.cols * n - 1) / std::max<int64_t>(1, w.cols * n);
  const int64_t want_rows = (w.rows + 8 * pool.size() - 1) / (8 * pool.size());
  if (is_quantized(w.type)) {
    job.args.layout = packed_layout(w.type, w.rows, w.cols);
    job.args.act_stride = detail::act_row_bytes(w.cols);
    const size_t act_bytes = job.args.act_stride * static_cast<size_t>(n);
    const size_t pack_bytes = w.packed != nullptr ? 0 : job.args.layout.bytes();
    // 64 bytes of slack to align the repacked copy.
    uint8_t* base = ws.reserve(act_bytes + pack_bytes + 64);
    uint8_t* act = base;
    job.args.packed = w.packed;
    if (w.packed == nullptr) {
      const auto addr = reinterpret_cast<uintptr_t>(base + act_bytes);
      uint8_t* packed = base + act_bytes + ((64 - addr % 64) % 64);
      pack_groups(w, 0, job.args.layout.groups, packed);
      job.args.packed = packed;
    }
    // AVX-512 offsets weights to unsigned: Q8_0 by 128, Q4_0 nibbles are already q + 8.
    const int start_scale = w.type == DType::Q4_0 ? 8 : (avx512 ? 128 : 0);
    for (int64_t r = 0; r < n; ++r)
      detail::quantize_activation_row(x + r * w.cols, w.cols, act + r * job.args.act_stride,
                                      start_scale);
    job.args.act = act;
    job.run = avx512 ? detail::matmul_qgroups_avx512 : detail::matmul_qgroups_avx2;
    job.units = job.args.layout.groups;
    const int64_t min_groups = (min_rows + kPackRows - 1) / kPackRows;
    const int64_t want_groups = (want_rows + kPackRows - 1) / kPackRows;
    job.units_per_task = std::max<int64_t>({1, want_groups, min_groups});
  } else {
    job.run = avx512 ? detail::matmul_rows_avx512 : detail::matmul_rows_avx2;
    job.units = w.rows;
    // Whole multiples of 4 rows, the row group of the tiled kernels.
    job.units_per_task = std::max<int64_t>({16, (want_rows + 3) / 4 * 4, (min_rows + 3) / 4 * 4});
  }
  const int64_t n_tasks = (job.units + job.units_per_task - 1) / job.units_per_task;
  // One reference capture keeps std::function from allocating.
  pool.parallel_for(n_tasks, [&job](int64_t task) {
    const int64_t u0 = task * job.units_per_task;
    job.run(job.args, u0, std::min(job.units, u0 + job.units_per_task));
  });
}

void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            MatmulWorkspace& ws) {
  matmul(matmul_default_isa(), w, x, n, y, pool, ws);
}

}  // namespace nucleus::kernels
