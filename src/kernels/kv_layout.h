#pragma once
// Where each K and V element of a paged KV block lives: the layout attention
// reads (kernels/attention.h) and the KV cache writes (kv/kv_cache.h).
//
// One block holds `block_size` (B) consecutive positions of one layer's K, and
// separately its V, for all n_kv_heads (H) heads of head_dim (D) elements;
// kv_dim = H·D. Both are head-major, so one KV head's share of a block is one
// contiguous run (a decode task reads whole cache lines, not a 256-byte
// slice of every 1 KiB row), and
//   keys   are stored transposed, element (p, e) at e·B + p: a head's D rows
//          of B positions, so a score kernel loads 16 positions of one
//          dimension as one vector and needs no horizontal sums;
//   values are stored per head and position, element (p, e) at
//          (e / D)·B·D + p·D + e % D: the value sum loads a position's D
//          values as vectors of output dimensions.
// F32 and F16 hold those elements. Q8_0 holds the int8 quants at the same
// indices (kv_dim·B bytes), then the f16 scales of ggml's Q8_0 blocks of 32
// along the row of kv_dim elements: keys' scale (p, e/32) at (e/32)·B + p,
// values' at p·(kv_dim/32) + e/32. The quants and scales are exactly ggml's
// quantize_row_q8_0 of the row, so a stored element converts back to the
// same float dequantize_row gives. A block of either kind is B × row_bytes
// (type, kv_dim) bytes.
#include <cstddef>
#include <cstdint>

#include "formats/tensor.h"

namespace nucleus::kernels {

struct KvLayout {
  DType type = DType::F32;  // F32, F16 or Q8_0 (kv_dim a multiple of 32)
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // Bytes of one layer's K (or V) part of a block.
  size_t block_bytes() const;
};

// Writes position `off` (< block_size) of a K (or V) block from a row of
// kv_dim floats, converted to the layout's type (ggml-exact rounding).
void kv_write_key(const KvLayout& l, void* block, int64_t off, const float* row);
void kv_write_value(const KvLayout& l, void* block, int64_t off, const float* row);
// Reads position `off` back as kv_dim floats (exact conversion).
void kv_read_key(const KvLayout& l, const void* block, int64_t off, float* row);
void kv_read_value(const KvLayout& l, const void* block, int64_t off, float* row);

}  // namespace nucleus::kernels
