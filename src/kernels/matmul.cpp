#include "kernels/matmul.h"

#include "kernels/dtype.h"

namespace nucleus::kernels {
namespace {

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

void row_reference(const Matrix& w, const float* x, const BlockQ8_0* xq, float* y, int64_t o,
                   std::vector<float>& tmp) {
  const uint8_t* wrow = w.data + static_cast<size_t>(o) * row_bytes(w.type, w.cols);
  if (w.type == DType::Q8_0 || w.type == DType::Q4_0) {
    y[o] = dot_q8_blocks(w.type, wrow, xq, w.cols / kQBlock);
    return;
  }
  dequantize_row(w.type, wrow, tmp.data(), w.cols);
  float sum = 0.0f;
  for (int64_t i = 0; i < w.cols; ++i) sum += tmp[i] * x[i];
  y[o] = sum;
}

}  // namespace

void matmul_reference(const Matrix& w, const float* x, int64_t n, float* y) {
  std::vector<float> tmp(static_cast<size_t>(w.cols));
  std::vector<BlockQ8_0> xq(static_cast<size_t>(w.cols / kQBlock + 1));
  const bool quant = w.type == DType::Q8_0 || w.type == DType::Q4_0;
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * w.cols;
    if (quant) quantize_row(DType::Q8_0, xr, xq.data(), w.cols);
    for (int64_t o = 0; o < w.rows; ++o) row_reference(w, xr, xq.data(), y + r * w.rows, o, tmp);
  }
}

void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool,
            MatmulWorkspace& ws) {
  const bool quant = w.type == DType::Q8_0 || w.type == DType::Q4_0;
  const size_t xq_row = static_cast<size_t>(w.cols / kQBlock) * sizeof(BlockQ8_0);
  const size_t tmp_bytes = static_cast<size_t>(w.cols) * sizeof(float) * pool.size();
  uint8_t* scratch = ws.reserve(quant ? xq_row * static_cast<size_t>(n) : tmp_bytes);
  if (quant) {
    for (int64_t r = 0; r < n; ++r)
      quantize_row(DType::Q8_0, x + r * w.cols, scratch + r * xq_row, w.cols);
  }
  // Tasks are chunks of output rows; each element is computed entirely by one task.
  constexpr int64_t kRowsPerTask = 16;
  const int64_t n_tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(n_tasks, [&](int64_t task) {
    std::vector<float> tmp(quant ? 0 : static_cast<size_t>(w.cols));
    const int64_t o0 = task * kRowsPerTask;
    const int64_t o1 = std::min(w.rows, o0 + kRowsPerTask);
    for (int64_t r = 0; r < n; ++r) {
      const auto* xq = reinterpret_cast<const BlockQ8_0*>(scratch + r * xq_row);
      for (int64_t o = o0; o < o1; ++o)
        row_reference(w, x + r * w.cols, xq, y + r * w.rows, o, tmp);
    }
  });
}

}  // namespace nucleus::kernels
