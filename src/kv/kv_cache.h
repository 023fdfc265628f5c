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
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace nucleus {

struct KvCacheShape {
  int64_t n_layers = 0;
  int64_t kv_dim = 0;       // n_kv_heads * head_dim
  int64_t block_size = 16;  // positions per block
  int64_t n_blocks = 0;     // pool size
};

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

  float* key(SeqId seq, int64_t layer, int64_t pos);
  float* value(SeqId seq, int64_t layer, int64_t pos);

  // Read access for attention: a sequence's block table and the K/V rows of
  // one block and layer (block_size × kv_dim each, position-major).
  std::span<const int32_t> blocks(SeqId seq) const;
  const float* key_block(int32_t block, int64_t layer) const;
  const float* value_block(int32_t block, int64_t layer) const;

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
  float* block_data(int32_t block) { return data_.get() + block * floats_per_block_; }
  const float* block_data(int32_t block) const { return data_.get() + block * floats_per_block_; }
  float* slot(SeqId seq, int64_t layer, int64_t pos, int which);

  KvCacheShape shape_;
  int64_t floats_per_block_ = 0;
  // Not value-initialised: pages are touched only when a block is first used.
  std::unique_ptr<float[]> data_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_blocks_;
  std::vector<Sequence> seqs_;
  std::vector<SeqId> free_seqs_;
};

}  // namespace nucleus
