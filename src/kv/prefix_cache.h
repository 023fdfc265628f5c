#pragma once
// Prefix caching: full KV blocks are content-addressed and reused across
// requests (shared system prompts, multi-turn chat). A block's address is its
// chain: the tokens it holds plus the block before it, so a match is exact —
// the hash only finds candidates, tokens and parent are compared.
//
// The cache holds one reference on every block it knows; a block held by
// nobody else costs nothing until the pool runs short, then evict() frees
// the least recently used ones (with every cached block after them in their
// chains, which become unreachable).
//
// Reuse never changes a logit: a position's K/V depends only on the tokens at
// and before it (batch-invariant kernels), so a block computed by an earlier
// request holds exactly what recomputing it would.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/kv_cache.h"

namespace nucleus {

class PrefixCache {
 public:
  explicit PrefixCache(KvCache& kv) : kv_(kv) {}
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // Where a sequence stands in the cache: blocks published so far and the
  // entry of the last one (-1 before the first).
  struct Cursor {
    int64_t blocks = 0;
    int32_t entry = -1;
  };

  // The longest run of cached blocks that holds ids[0, n) with n <= max_tokens
  // and n a multiple of the block size. Fills `blocks` (no references taken)
  // and `cursor`; returns n. Marks the matched entries used.
  int64_t match(std::span<const int32_t> ids, int64_t max_tokens, std::vector<int32_t>& blocks,
                Cursor& cursor);

  // Registers every full block of seq not yet published; ids are the
  // sequence's tokens (at least kv.length(seq) of them).
  void publish(KvCache::SeqId seq, std::span<const int32_t> ids, Cursor& cursor);

  // Frees up to n blocks that only the cache holds, least recently used
  // first; returns how many were freed.
  int64_t evict(int64_t n);

  // Blocks held by the cache alone (free for the taking), and all it knows.
  int64_t evictable_blocks() const;
  int64_t cached_blocks() const { return live_; }

 private:
  struct Entry {
    int32_t block = -1;  // -1: free slot
    int32_t parent = -1;
    uint64_t hash = 0;
    uint64_t used = 0;
    std::vector<int32_t> tokens;
    std::vector<int32_t> children;
  };
  uint64_t chain_hash(int32_t parent, std::span<const int32_t> tokens) const;
  int32_t find(int32_t parent, uint64_t hash, std::span<const int32_t> tokens) const;
  void remove(int32_t entry);

  KvCache& kv_;
  std::vector<Entry> entries_;
  std::vector<int32_t> free_entries_;
  std::unordered_multimap<uint64_t, int32_t> by_hash_;
  uint64_t clock_ = 0;
  int64_t live_ = 0;
};

}  // namespace nucleus
