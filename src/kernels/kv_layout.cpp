#include "kernels/kv_layout.h"

#include <cstring>

#include "kernels/dtype.h"

namespace nucleus::kernels {
namespace {

// Index of element (p, e) in the quants/elements part of a block.
inline size_t key_index(const KvLayout& l, int64_t p, int64_t e) {
  return static_cast<size_t>(e * l.block_size + p);
}
inline size_t value_index(const KvLayout& l, int64_t p, int64_t e) {
  const int64_t d = l.head_dim;
  return static_cast<size_t>((e / d) * l.block_size * d + p * d + e % d);
}
// Index of the f16 scale of ggml block `b` (elements 32b .. 32b + 31) of position p.
inline size_t key_scale_index(const KvLayout& l, int64_t p, int64_t b) {
  return static_cast<size_t>(b * l.block_size + p);
}
inline size_t value_scale_index(const KvLayout& l, int64_t p, int64_t b) {
  return static_cast<size_t>(p * (l.kv_dim() / kQBlock) + b);
}

template <bool kKeys>
void write(const KvLayout& l, void* block, int64_t off, const float* row) {
  const int64_t n = l.kv_dim();
  auto index = [&](int64_t e) { return kKeys ? key_index(l, off, e) : value_index(l, off, e); };
  switch (l.type) {
    case DType::F32: {
      auto* dst = static_cast<float*>(block);
      for (int64_t e = 0; e < n; ++e) dst[index(e)] = row[e];
      return;
    }
    case DType::F16: {
      auto* dst = static_cast<uint16_t*>(block);
      for (int64_t e = 0; e < n; ++e) dst[index(e)] = fp32_to_fp16(row[e]);
      return;
    }
    default: {
      // Q8_0: each block of 32 quantized by dtype.cpp (ggml's rounding),
      // then its quants and scale put where the layout keeps them.
      auto* q = static_cast<int8_t*>(block);
      auto* scales = reinterpret_cast<uint16_t*>(q + n * l.block_size);
      for (int64_t b = 0; b < n / kQBlock; ++b) {
        BlockQ8_0 qb;
        quantize_row(DType::Q8_0, row + b * kQBlock, &qb, kQBlock);
        for (int64_t i = 0; i < kQBlock; ++i) q[index(b * kQBlock + i)] = qb.qs[i];
        scales[kKeys ? key_scale_index(l, off, b) : value_scale_index(l, off, b)] = qb.d;
      }
      return;
    }
  }
}

template <bool kKeys>
void read(const KvLayout& l, const void* block, int64_t off, float* row) {
  const int64_t n = l.kv_dim();
  auto index = [&](int64_t e) { return kKeys ? key_index(l, off, e) : value_index(l, off, e); };
  switch (l.type) {
    case DType::F32: {
      const auto* src = static_cast<const float*>(block);
      for (int64_t e = 0; e < n; ++e) row[e] = src[index(e)];
      return;
    }
    case DType::F16: {
      const auto* src = static_cast<const uint16_t*>(block);
      for (int64_t e = 0; e < n; ++e) row[e] = fp16_to_fp32(src[index(e)]);
      return;
    }
    default: {
      const auto* q = static_cast<const int8_t*>(block);
      const auto* scales = reinterpret_cast<const uint16_t*>(q + n * l.block_size);
      for (int64_t e = 0; e < n; ++e) {
        const int64_t b = e / kQBlock;
        const uint16_t s =
            scales[kKeys ? key_scale_index(l, off, b) : value_scale_index(l, off, b)];
        row[e] = static_cast<float>(q[index(e)]) * fp16_to_fp32(s);
      }
      return;
    }
  }
}

}  // namespace

size_t KvLayout::block_bytes() const {
  return static_cast<size_t>(block_size) * row_bytes(type, kv_dim());
}

void kv_write_key(const KvLayout& l, void* block, int64_t off, const float* row) {
  write<true>(l, block, off, row);
}
void kv_write_value(const KvLayout& l, void* block, int64_t off, const float* row) {
  write<false>(l, block, off, row);
}
void kv_read_key(const KvLayout& l, const void* block, int64_t off, float* row) {
  read<true>(l, block, off, row);
}
void kv_read_value(const KvLayout& l, const void* block, int64_t off, float* row) {
  read<false>(l, block, off, row);
}

}  // namespace nucleus::kernels
