#pragma once
// Causal attention of one query row against a sequence's K/V, streamed block
// by block from the paged KV cache with an online softmax: no score matrix is
// ever materialised, and the order of accumulation is fixed by position, so a
// row gives the same bits in prefill and in decode. Blocks are in the layout
// of kernels/kv_layout.h (head-major; keys transposed). A score is
// q[0]·k[0], then fma(q[d], k[d], ·) for d = 1 .. head_dim-1; the softmax
// steps over 32-position chunks; a value sum adds even and odd positions of
// a chunk in two fma chains.
#include <cstdint>
#include <span>

#include "formats/tensor.h"

namespace nucleus::kernels {

// True when this CPU has AVX-512 (and NUCLEUS_NO_AVX512 is not set).
bool attention_avx512_default();

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;  // positions per KV block
  // Element type of the stored K/V: F32, F16 or Q8_0 (ggml blocks of 32
  // along the row of n_kv_heads*head_dim elements). F16/Q8_0 elements are
  // converted to f32 exactly (an f16 value, or an int8 times an f16 scale, is
  // a float) once per chunk of positions for a KV head, into a scratch on
  // the stack, and then run through the f32 arithmetic: the result is
  // bit-identical to F32 attention over the converted values, whichever pass
  // reads them.
  DType kv_type = DType::F32;
  // Scores and value sums through AVX-512 where the CPU has it (the value
  // sums when head_dim is a multiple of 16). The same bits either way (lanes
  // are positions, or output dimensions); tests turn it off to check that.
  bool avx512 = attention_avx512_default();
};

// Largest head_dim attention takes (its stack scratch holds a chunk of 32
// positions of one head's keys and values as f32: 64 KiB each).
constexpr int64_t kAttentionMaxHeadDim = 512;

// Reads K/V of positions [0, n_positions) through the block table:
// key_blocks[b] / value_blocks[b] point at block b's keys / values of one
// layer in the layout of kernels/kv_layout.h (block_size positions,
// shape.kv_type). Computes head `head` only (callers parallelise over heads).
void attention_head(const AttentionShape& shape, const float* q_head,
                    std::span<const void* const> key_blocks,
                    std::span<const void* const> value_blocks, int64_t n_positions, int64_t head,
                    float* out_head);
// The same for F32 blocks given as floats.
void attention_head(const AttentionShape& shape, const float* q_head,
                    std::span<const float* const> key_blocks,
                    std::span<const float* const> value_blocks, int64_t n_positions, int64_t head,
                    float* out_head);

// Every query head that shares KV head `kv_head` (heads kv_head·G ..
// kv_head·G + G - 1, G = n_heads / n_kv_heads), in one pass over the K/V
// blocks, so each block is read from memory once for the whole group (GQA).
// q_row / out_row hold all n_heads heads of one row; only the group's heads
// are written. Each head's result is bit-identical to attention_head's.
void attention_kv_group(const AttentionShape& shape, const float* q_row,
                        std::span<const void* const> key_blocks,
                        std::span<const void* const> value_blocks, int64_t n_positions,
                        int64_t kv_head, float* out_row);
void attention_kv_group(const AttentionShape& shape, const float* q_row,
                        std::span<const float* const> key_blocks,
                        std::span<const float* const> value_blocks, int64_t n_positions,
                        int64_t kv_head, float* out_row);

}  // namespace nucleus::kernels
