#pragma once
// The KV cache: keys and values of past positions, kept so that a decode step
// costs O(context) instead of re-running the O(context²) prefix.
//
// Memory is a pool of fixed-size blocks; each block holds `block_size`
// consecutive positions of one sequence for every layer (K and V). A sequence
// is a block table plus a length. Blocks are reference-counted so a sequence
// can be forked (beam search, n > 1 samples, shared prompts): the fork shares
// every block, and the first write into a shared block copies it
// (copy-on-write) — only ever the partly filled last block.
//
// Positions are stored in the cache's element type: F32 (default), F16, or
// Q8_0 (ggml blocks of 32 along the row, kv_dim a multiple of 32), in the
// head-major layout attention reads directly (kernels/kv_layout.h: keys
// transposed); a row is converted once, when it is written.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/tensor.h"
#include "kernels/kv_layout.h"

namespace nucleus {

struct KvCacheShape {
  int64_t n_layers = 0;
  int64_t kv_dim = 0;       // n_kv_heads * head_dim
  int64_t block_size = 16;  // positions per block
  int64_t n_blocks = 0;     // pool size
  DType type = DType::F32;  // element type of the stored rows: F32, F16 or Q8_0
  int64_t head_dim = 0;     // 0: kv_dim (one head); else kv_dim is a multiple of it
};

// "f32" | "f16" | "q8_0" -> the KV element type; Error on anything else.
DType parse_kv_type(const std::string& name);

struct KvMemory {
  int64_t blocks_total = 0;
  int64_t blocks_used = 0;
  int64_t bytes_per_block = 0;
  int64_t bytes_used() const { return blocks_used * bytes_per_block; }
  int64_t bytes_total() const { return blocks_total * bytes_per_block; }
};

class KvCache {
 public:
  using SeqId = int32_t;

  explicit KvCache(const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }

  SeqId create();
  // A new sequence sharing all of src's positions.
  SeqId fork(SeqId src);
  // A new sequence holding a private copy of every block of src (no sharing):
  // what a cache without block sharing must do to duplicate a sequence. Used
  // to measure the cost sharing avoids. Throws Error when the pool is short.
  SeqId clone(SeqId src);
  void release(SeqId seq);
  bool alive(SeqId seq) const;
  int64_t length(SeqId seq) const;
  // Drops positions >= new_length (blocks no longer needed are released).
  void truncate(SeqId seq, int64_t new_length);

  // Appends one position to seq and returns it; the position's K/V rows are
  // then writable for every layer. Copies the last block first if it is
  // shared. Throws Error when the pool is exhausted.
  int64_t append(SeqId seq);

  // Converts one position's K and V rows (kv_dim floats each) to the cache's
  // type and stores them.
  void store(SeqId seq, int64_t layer, int64_t pos, const float* k, const float* v);
  // Reads one position's K and V rows back as floats (exact conversion).
  void load(SeqId seq, int64_t layer, int64_t pos, float* k, float* v) const;

  // Read access for attention: a sequence's block table and the K/V of one
  // block and layer (block_size positions in layout(), kernels/kv_layout.h).
  std::span<const int32_t> blocks(SeqId seq) const;
  const void* key_data(int32_t block, int64_t layer) const;
  const void* value_data(int32_t block, int64_t layer) const;
  const kernels::KvLayout& layout() const { return layout_; }
  // Bytes of one stored K (or V) row.
  int64_t row_bytes() const { return row_bytes_; }

  // Blocks that appending n positions to seq would take from the pool
  // (new blocks plus a copy of a shared last block).
  int64_t blocks_needed(SeqId seq, int64_t n) const;
  int64_t free_blocks() const { return static_cast<int64_t>(free_blocks_.size()); }

  int32_t ref_count(int32_t block) const { return refs_[static_cast<size_t>(block)]; }

  // Prefix sharing across requests (kv/prefix_cache.h): a new sequence whose
  // first positions are the given full blocks (each gains a reference), and
  // extra references held by someone other than a sequence.
  SeqId create_from(std::span<const int32_t> blocks, int64_t length);
  void retain(int32_t block);
  void drop(int32_t block);  // the block returns to the pool at zero references
  KvMemory memory() const;

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    int64_t length = 0;
    bool live = false;
  };
  Sequence& seq_ref(SeqId seq);
  const Sequence& seq_ref(SeqId seq) const;
  int32_t allocate_block();
  void unref(int32_t block);
  uint8_t* block_data(int32_t block) { return data_.get() + block * bytes_per_block_; }
  const uint8_t* block_data(int32_t block) const { return data_.get() + block * bytes_per_block_; }
  // Byte offset in data_ of the K (which = 0) or V (1) part of a
  // position's block for one layer.
  int64_t part_offset(SeqId seq, int64_t layer, int64_t pos, int which) const;

  KvCacheShape shape_;
  kernels::KvLayout layout_;
  int64_t row_bytes_ = 0;
  int64_t bytes_per_block_ = 0;
  // Not value-initialised: pages are touched only when a block is first used.
  // 64-byte aligned so F32/F16 rows of a 64-byte multiple start on cache lines.
  struct FreeAligned {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], FreeAligned> data_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_blocks_;
  std::vector<Sequence> seqs_;
  std::vector<SeqId> free_seqs_;
};

}  // namespace nucleus
