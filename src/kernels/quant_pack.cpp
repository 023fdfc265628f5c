#include "kernels/quant_pack.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus::kernels {

PackedLayout packed_layout(DType t, int64_t rows, int64_t cols) {
  if (t != DType::Q8_0 && t != DType::Q4_0) {
    std::string msg = "pack: ";
    msg += dtype_name(t);
    msg += " weights are not repacked (only Q8_0 and Q4_0)";
    throw Error(msg);
  }
  if (cols <= 0 || cols % kQBlock != 0 || rows <= 0) {
    std::string msg = "pack: bad matrix shape ";
    msg += std::to_string(rows);
    msg += " x ";
    msg += std::to_string(cols);
    throw Error(msg);
  }
  PackedLayout l;
  l.groups = (rows + kPackRows - 1) / kPackRows;
  l.blocks = cols / kQBlock;
  l.block_bytes = t == DType::Q8_0 ? 512 : 256;
  const size_t raw = (l.block_bytes + 2 * kPackRows) * static_cast<size_t>(l.blocks);
  l.group_stride = (raw + 63) / 64 * 64;
  return l;
}

void pack_groups(const Matrix& w, int64_t g0, int64_t g1, uint8_t* out) {
  const PackedLayout l = packed_layout(w.type, w.rows, w.cols);
  const size_t stride = row_bytes(w.type, w.cols);
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* dst = out + static_cast<size_t>(g) * l.group_stride;
    // A partial group's missing rows keep zero scales; the alignment tail is zero.
    const size_t used = l.scales_offset() + 2 * kPackRows * static_cast<size_t>(l.blocks);
    if ((g + 1) * kPackRows > w.rows) {
      std::memset(dst, 0, l.group_stride);
    } else {
      std::memset(dst + used, 0, l.group_stride - used);
    }
    auto* scales = reinterpret_cast<uint16_t*>(dst + l.scales_offset());
    for (int r = 0; r < kPackRows; ++r) {
      const int64_t row = g * kPackRows + r;
      const bool real = row < w.rows;
      const uint8_t* src = real ? w.data + static_cast<size_t>(row) * stride : nullptr;
      for (int64_t b = 0; b < l.blocks; ++b) {
        uint8_t* blk = dst + static_cast<size_t>(b) * l.block_bytes + 4 * r;
        // 4 consecutive elements of the row go to one lane of a 64-byte chunk.
        if (w.type == DType::Q8_0) {
          if (!real) {
            for (int k = 0; k < 8; ++k) std::memset(blk + 64 * k, 0x80, 4);
            continue;
          }
          const BlockQ8_0* q = reinterpret_cast<const BlockQ8_0*>(src) + b;
          scales[b * kPackRows + r] = q->d;
          for (int k = 0; k < 8; ++k) {
            uint32_t v;
            std::memcpy(&v, q->qs + 4 * k, 4);
            v ^= 0x80808080u;
            std::memcpy(blk + 64 * k, &v, 4);
          }
        } else {
          if (!real) {
            for (int m = 0; m < 4; ++m) std::memset(blk + 64 * m, 0x88, 4);
            continue;
          }
          // Stored byte e holds element e (low nibble) and e + 16 (high):
          // already the pairing of chunk m = e / 4.
          const BlockQ4_0* q = reinterpret_cast<const BlockQ4_0*>(src) + b;
          scales[b * kPackRows + r] = q->d;
          for (int m = 0; m < 4; ++m) std::memcpy(blk + 64 * m, q->qs + 4 * m, 4);
        }
      }
    }
  }
}

void FreeDeleter::operator()(uint8_t* p) const {
  std::free(p);
}

AlignedBytes aligned_bytes(size_t n) {
  // Repacked weights are read once per token, front to back: on 4 KiB pages
  // a TinyLlama layer's matrices cross thousands of pages per token. Large
  // buffers are 2 MiB aligned and asked for transparent huge pages before
  // they are first written; where THP is off (or madvise fails) they stay on
  // normal pages, which only costs the TLB misses.
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = n >= kHuge ? kHuge : 64;
  const size_t rounded = n == 0 ? align : (n + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr) throw Error("pack: out of memory for " + std::to_string(n) + " bytes");
  if (align == kHuge) (void)::madvise(p, rounded, MADV_HUGEPAGE);
  return AlignedBytes(static_cast<uint8_t*>(p));
}

Matrix pack_matrix(const Matrix& w, AlignedBytes& storage) {
  if (w.type != DType::Q8_0 && w.type != DType::Q4_0) return w;
  const PackedLayout l = packed_layout(w.type, w.rows, w.cols);
  storage = aligned_bytes(l.bytes());
  pack_groups(w, 0, l.groups, storage.get());
  Matrix m = w;
  m.packed = storage.get();
  return m;
}

Matrix copy_matrix(const Matrix& w, AlignedBytes& storage) {
  const size_t bytes = row_bytes(w.type, w.cols) * static_cast<size_t>(w.rows);
  storage = aligned_bytes(bytes);
  if (bytes > 0) std::memcpy(storage.get(), w.data, bytes);
  Matrix m = w;
  m.data = storage.get();
  return m;
}

}  // namespace nucleus::kernels
