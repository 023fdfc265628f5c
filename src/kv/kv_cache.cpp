#include "kv/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus {

DType parse_kv_type(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "q8_0") return DType::Q8_0;
  throw Error("kv type '" + name + "' is not one of f32, f16, q8_0");
}

void KvCache::FreeAligned::operator()(uint8_t* p) const {
  ::operator delete[](p, std::align_val_t{64});
}

KvCache::KvCache(const KvCacheShape& shape) : shape_(shape) {
  check(shape.n_layers > 0 && shape.kv_dim > 0 && shape.block_size > 0 && shape.n_blocks > 0,
        "kv cache: all dimensions must be positive");
  check(shape.type == DType::F32 || shape.type == DType::F16 || shape.type == DType::Q8_0,
        std::string("kv cache: element type ") + dtype_name(shape.type) +
            " is not one of f32, f16, q8_0");
  check(shape.type != DType::Q8_0 || shape.kv_dim % kernels::kQBlock == 0,
        "kv cache: q8_0 needs a KV row (n_kv_heads × head_dim = " + std::to_string(shape.kv_dim) +
            ") that is a multiple of 32");
  const int64_t hd = shape.head_dim > 0 ? shape.head_dim : shape.kv_dim;
  check(shape.head_dim >= 0 && shape.kv_dim % hd == 0,
        "kv cache: kv_dim " + std::to_string(shape.kv_dim) + " is not a multiple of head_dim " +
            std::to_string(hd));
  layout_ = kernels::KvLayout{shape.type, shape.kv_dim / hd, hd, shape.block_size};
  row_bytes_ = static_cast<int64_t>(nucleus::row_bytes(shape.type, shape.kv_dim));
  bytes_per_block_ = shape.n_layers * 2 * shape.block_size * row_bytes_;
  data_.reset(static_cast<uint8_t*>(::operator new[](
      static_cast<size_t>(bytes_per_block_ * shape.n_blocks), std::align_val_t{64})));
  refs_.assign(static_cast<size_t>(shape.n_blocks), 0);
  free_blocks_.reserve(static_cast<size_t>(shape.n_blocks));
  // Hand out low block ids first so a small run touches little memory.
  for (int64_t b = shape.n_blocks - 1; b >= 0; --b) free_blocks_.push_back(static_cast<int32_t>(b));
}

KvCache::Sequence& KvCache::seq_ref(SeqId seq) {
  if (seq < 0 || static_cast<size_t>(seq) >= seqs_.size() || !seqs_[seq].live)
    throw Error("kv cache: no live sequence " + std::to_string(seq));
  return seqs_[static_cast<size_t>(seq)];
}

const KvCache::Sequence& KvCache::seq_ref(SeqId seq) const {
  return const_cast<KvCache*>(this)->seq_ref(seq);
}

bool KvCache::alive(SeqId seq) const {
  return seq >= 0 && static_cast<size_t>(seq) < seqs_.size() && seqs_[seq].live;
}

KvCache::SeqId KvCache::create() {
  SeqId id;
  if (!free_seqs_.empty()) {
    id = free_seqs_.back();
    free_seqs_.pop_back();
  } else {
    id = static_cast<SeqId>(seqs_.size());
    seqs_.emplace_back();
  }
  Sequence& s = seqs_[static_cast<size_t>(id)];
  s.blocks.clear();
  s.length = 0;
  s.live = true;
  return id;
}

KvCache::SeqId KvCache::fork(SeqId src) {
  seq_ref(src);
  SeqId id = create();
  // seqs_ may have grown: take references only after create().
  Sequence& from = seqs_[static_cast<size_t>(src)];
  Sequence& to = seqs_[static_cast<size_t>(id)];
  to.blocks = from.blocks;
  to.length = from.length;
  for (int32_t b : to.blocks) ++refs_[static_cast<size_t>(b)];
  return id;
}

KvCache::SeqId KvCache::clone(SeqId src) {
  const int64_t n = static_cast<int64_t>(seq_ref(src).blocks.size());
  check(free_blocks() >= n, "kv cache: out of blocks to clone a sequence of " + std::to_string(n) +
                                " blocks (" + std::to_string(free_blocks()) + " free)");
  SeqId id = create();
  Sequence& from = seqs_[static_cast<size_t>(src)];
  Sequence& to = seqs_[static_cast<size_t>(id)];
  to.length = from.length;
  for (int32_t b : from.blocks) {
    const int32_t fresh = allocate_block();
    std::memcpy(block_data(fresh), block_data(b), static_cast<size_t>(bytes_per_block_));
    to.blocks.push_back(fresh);
  }
  return id;
}

void KvCache::unref(int32_t block) {
  if (--refs_[static_cast<size_t>(block)] == 0) free_blocks_.push_back(block);
}

void KvCache::release(SeqId seq) {
  Sequence& s = seq_ref(seq);
  for (int32_t b : s.blocks) unref(b);
  s.blocks.clear();
  s.length = 0;
  s.live = false;
  free_seqs_.push_back(seq);
}

int64_t KvCache::length(SeqId seq) const {
  return seq_ref(seq).length;
}

void KvCache::truncate(SeqId seq, int64_t new_length) {
  Sequence& s = seq_ref(seq);
  check(new_length >= 0 && new_length <= s.length, "kv cache: truncate beyond sequence length");
  const size_t keep = static_cast<size_t>((new_length + shape_.block_size - 1) / shape_.block_size);
  while (s.blocks.size() > keep) {
    unref(s.blocks.back());
    s.blocks.pop_back();
  }
  s.length = new_length;
}

int32_t KvCache::allocate_block() {
  // Runs during decode (each new or copied block): the message is built only on failure.
  if (free_blocks_.empty())
    throw Error("kv cache: out of blocks (pool of " + std::to_string(shape_.n_blocks) +
                " blocks of " + std::to_string(shape_.block_size) + " positions is full)");
  int32_t b = free_blocks_.back();
  free_blocks_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

int64_t KvCache::append(SeqId seq) {
  Sequence& s = seq_ref(seq);
  const int64_t pos = s.length;
  const size_t bi = static_cast<size_t>(pos / shape_.block_size);
  if (bi == s.blocks.size()) {
    s.blocks.push_back(allocate_block());
  } else if (refs_[static_cast<size_t>(s.blocks[bi])] > 1) {
    // Copy-on-write: the block is shared with another sequence that owns the
    // positions we are about to overwrite.
    const int32_t old = s.blocks[bi];
    const int32_t fresh = allocate_block();
    std::memcpy(block_data(fresh), block_data(old), static_cast<size_t>(bytes_per_block_));
    unref(old);
    s.blocks[bi] = fresh;
  }
  s.length = pos + 1;
  return pos;
}

int64_t KvCache::blocks_needed(SeqId seq, int64_t n) const {
  const Sequence& s = seq_ref(seq);
  const int64_t bs = shape_.block_size;
  int64_t need = (s.length + n + bs - 1) / bs - static_cast<int64_t>(s.blocks.size());
  if (n > 0 && s.length % bs != 0 && refs_[static_cast<size_t>(s.blocks.back())] > 1) ++need;
  return need;
}

int64_t KvCache::part_offset(SeqId seq, int64_t layer, int64_t pos, int which) const {
  const Sequence& s = seq_ref(seq);
  check(pos >= 0 && pos < s.length && layer >= 0 && layer < shape_.n_layers,
        "kv cache: position or layer out of range");
  const int32_t b = s.blocks[static_cast<size_t>(pos / shape_.block_size)];
  return b * bytes_per_block_ + (layer * 2 + which) * shape_.block_size * row_bytes_;
}

void KvCache::store(SeqId seq, int64_t layer, int64_t pos, const float* k, const float* v) {
  // Runs for every token and layer: F16/Q8_0 use the ggml-exact conversions
  // of kernels/dtype.h.
  const int64_t off = pos % shape_.block_size;
  kernels::kv_write_key(layout_, data_.get() + part_offset(seq, layer, pos, 0), off, k);
  kernels::kv_write_value(layout_, data_.get() + part_offset(seq, layer, pos, 1), off, v);
}

void KvCache::load(SeqId seq, int64_t layer, int64_t pos, float* k, float* v) const {
  const int64_t off = pos % shape_.block_size;
  kernels::kv_read_key(layout_, data_.get() + part_offset(seq, layer, pos, 0), off, k);
  kernels::kv_read_value(layout_, data_.get() + part_offset(seq, layer, pos, 1), off, v);
}

std::span<const int32_t> KvCache::blocks(SeqId seq) const {
  return seq_ref(seq).blocks;
}

const void* KvCache::key_data(int32_t block, int64_t layer) const {
  return block_data(block) + (layer * 2) * shape_.block_size * row_bytes_;
}
const void* KvCache::value_data(int32_t block, int64_t layer) const {
  return block_data(block) + (layer * 2 + 1) * shape_.block_size * row_bytes_;
}
KvMemory KvCache::memory() const {
  KvMemory m;
  m.blocks_total = shape_.n_blocks;
  m.blocks_used = shape_.n_blocks - static_cast<int64_t>(free_blocks_.size());
  m.bytes_per_block = bytes_per_block_;
  return m;
}

KvCache::SeqId KvCache::create_from(std::span<const int32_t> blocks, int64_t length) {
  check(length >= 0 && length <= static_cast<int64_t>(blocks.size()) * shape_.block_size &&
            length > (static_cast<int64_t>(blocks.size()) - 1) * shape_.block_size,
        "kv cache: create_from length does not match its blocks");
  for (int32_t b : blocks)
    check(b >= 0 && b < shape_.n_blocks && refs_[static_cast<size_t>(b)] > 0,
          "kv cache: create_from with a block that is not in use");
  const SeqId id = create();
  Sequence& s = seqs_[static_cast<size_t>(id)];
  s.blocks.assign(blocks.begin(), blocks.end());
  s.length = length;
  for (int32_t b : blocks) ++refs_[static_cast<size_t>(b)];
  return id;
}

void KvCache::retain(int32_t block) {
  check(block >= 0 && block < shape_.n_blocks && refs_[static_cast<size_t>(block)] > 0,
        "kv cache: retain of a block that is not in use");
  ++refs_[static_cast<size_t>(block)];
}

void KvCache::drop(int32_t block) {
  check(block >= 0 && block < shape_.n_blocks && refs_[static_cast<size_t>(block)] > 0,
        "kv cache: drop of a block that is not in use");
  unref(block);
}

}  // namespace nucleus
