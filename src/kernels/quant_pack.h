#pragma once
// Load-time repacking of Q8_0 / Q4_0 weight matrices into the layout the
// quantized matmul kernels stream best: 16 output rows interleaved, so one
// 64-byte load feeds one vpdpbusd with 4 bytes of each of 16 rows and every
// SIMD lane owns one output row. A lane then holds the exact int32 dot
// product of a whole 32-block, and the float accumulation per output is one
// sequential fma per block — the same order for one row (decode) or many
// (prefill), for AVX2 or AVX-512 (see matmul_isa.h).
//
// Layout of row group g (rows 16g .. 16g+15; rows past the matrix are zero
// weights with zero scales), group_stride bytes, 64-byte aligned:
//   nb quant blocks of block_bytes each, then nb × 16 f16 scales (row order).
//   Q8_0 block (512 bytes): chunk k = 0..7 of 64 bytes; byte 4r+j of chunk k
//     is row r's element 4k+j as unsigned (q + 128, i.e. q ^ 0x80).
//   Q4_0 block (256 bytes): chunk m = 0..3 of 64 bytes; byte 4r+j of chunk m
//     holds row r's stored nibble (q + 8) of element 4m+j in its low half and
//     of element 16+4m+j in its high half.
// The packed bytes per block equal the file's (16 × 34 or 16 × 18), so
// bandwidth figures do not change.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/matmul.h"

namespace nucleus::kernels {

constexpr int kPackRows = 16;

struct PackedLayout {
  int64_t groups = 0;      // ceil(rows / 16)
  int64_t blocks = 0;      // cols / 32
  size_t block_bytes = 0;  // quant bytes per block of one group: 512 or 256
  size_t group_stride = 0;
  size_t bytes() const { return group_stride * static_cast<size_t>(groups); }
  size_t scales_offset() const { return block_bytes * static_cast<size_t>(blocks); }
};

// Throws Error unless t is Q8_0 or Q4_0 and cols a positive multiple of 32.
PackedLayout packed_layout(DType t, int64_t rows, int64_t cols);

// Writes row groups [g0, g1) of w (file layout) into out, which holds
// packed_layout(...).bytes() bytes and is 64-byte aligned.
void pack_groups(const Matrix& w, int64_t g0, int64_t g1, uint8_t* out);

struct FreeDeleter {
  void operator()(uint8_t* p) const;
};
using AlignedBytes = std::unique_ptr<uint8_t[], FreeDeleter>;
AlignedBytes aligned_bytes(size_t n);

// The whole matrix repacked; returns w with w.packed pointing into *storage.
// Non-quantized matrices are returned unchanged (storage left empty).
Matrix pack_matrix(const Matrix& w, AlignedBytes& storage);

// The matrix's bytes copied unchanged into *storage (aligned_bytes: huge
// pages where the kernel gives them); returns w with w.data pointing there.
// For the weights the kernels read in the file's layout (F32/F16/BF16, the
// K-quants): decode streams every byte once per token, and a read-only file
// mapping's speed depends on how the page cache happened to be filled (Zen 5,
// TinyLlama F16 decode: 12.6 tok/s on pages written by `convert`, 22.3 after
// the file was re-read), so the copy makes it independent of that.
Matrix copy_matrix(const Matrix& w, AlignedBytes& storage);

}  // namespace nucleus::kernels
