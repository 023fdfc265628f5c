#include "kv/prefix_cache.h"

#include <algorithm>
#include <limits>


namespace nucleus {
namespace {

// SplitMix64's finaliser: a cheap, well-mixed step for the chain hash.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

PrefixCache::~PrefixCache() {
  for (Entry& e : entries_)
    if (e.block >= 0) kv_.drop(e.block);
}

uint64_t PrefixCache::chain_hash(int32_t parent, std::span<const int32_t> tokens) const {
  uint64_t h = mix(static_cast<uint64_t>(static_cast<int64_t>(parent)) +
                                        (parent >= 0 ? entries_[static_cast<size_t>(parent)].hash
                                                     : 0x5bd1e995u));
  for (int32_t t : tokens) h = mix(h ^ static_cast<uint32_t>(t));
  return h;
}

int32_t PrefixCache::find(int32_t parent, uint64_t hash, std::span<const int32_t> tokens) const {
  auto [lo, hi] = by_hash_.equal_range(hash);
  for (auto it = lo; it != hi; ++it) {
    const Entry& e = entries_[static_cast<size_t>(it->second)];
    if (e.parent == parent && std::equal(e.tokens.begin(), e.tokens.end(), tokens.begin(),
                                         tokens.end()))
      return it->second;
  }
  return -1;
}

int64_t PrefixCache::match(std::span<const int32_t> ids, int64_t max_tokens,
                           std::vector<int32_t>& blocks, Cursor& cursor) {
  const int64_t bs = kv_.shape().block_size;
  blocks.clear();
  cursor = {};
  const int64_t limit = std::min<int64_t>(max_tokens, static_cast<int64_t>(ids.size()));
  ++clock_;
  for (int64_t n = 0; n + bs <= limit; n += bs) {
    const auto toks = ids.subspan(static_cast<size_t>(n), static_cast<size_t>(bs));
    const int32_t e = find(cursor.entry, chain_hash(cursor.entry, toks), toks);
    if (e < 0) break;
    entries_[static_cast<size_t>(e)].used = clock_;
    blocks.push_back(entries_[static_cast<size_t>(e)].block);
    cursor.entry = e;
    ++cursor.blocks;
  }
  return cursor.blocks * bs;
}

void PrefixCache::publish(KvCache::SeqId seq, std::span<const int32_t> ids, Cursor& cursor) {
  const int64_t bs = kv_.shape().block_size;
  const int64_t full = std::min<int64_t>(kv_.length(seq), static_cast<int64_t>(ids.size())) / bs;
  const std::span<const int32_t> table = kv_.blocks(seq);
  ++clock_;
  for (; cursor.blocks < full; ++cursor.blocks) {
    const auto toks =
        ids.subspan(static_cast<size_t>(cursor.blocks * bs), static_cast<size_t>(bs));
    const uint64_t h = chain_hash(cursor.entry, toks);
    int32_t e = find(cursor.entry, h, toks);
    if (e < 0) {
      // New content: the cache takes a reference on the sequence's block.
      if (!free_entries_.empty()) {
        e = free_entries_.back();
        free_entries_.pop_back();
      } else {
        e = static_cast<int32_t>(entries_.size());
        entries_.emplace_back();
      }
      Entry& en = entries_[static_cast<size_t>(e)];
      en.block = table[static_cast<size_t>(cursor.blocks)];
      en.parent = cursor.entry;
      en.hash = h;
      en.tokens.assign(toks.begin(), toks.end());
      en.children.clear();
      kv_.retain(en.block);
      by_hash_.emplace(h, e);
      if (cursor.entry >= 0) entries_[static_cast<size_t>(cursor.entry)].children.push_back(e);
      ++live_;
    }
    // Same content computed twice (two requests at once): the first copy
    // stays cached; the chain continues through it either way.
    entries_[static_cast<size_t>(e)].used = clock_;
    cursor.entry = e;
  }
}

void PrefixCache::remove(int32_t entry) {
  // Children first: without their parent they can never match again.
  std::vector<int32_t> stack{entry};
  while (!stack.empty()) {
    const int32_t id = stack.back();
    stack.pop_back();
    Entry& e = entries_[static_cast<size_t>(id)];
    for (int32_t c : e.children) stack.push_back(c);
    auto [lo, hi] = by_hash_.equal_range(e.hash);
    for (auto it = lo; it != hi; ++it)
      if (it->second == id) {
        by_hash_.erase(it);
        break;
      }
    kv_.drop(e.block);
    e.block = -1;
    e.children.clear();
    e.tokens.clear();
    free_entries_.push_back(id);
    --live_;
  }
  // Only the subtree's root is still linked from a surviving parent.
  const int32_t parent = entries_[static_cast<size_t>(entry)].parent;
  if (parent >= 0) {
    auto& ch = entries_[static_cast<size_t>(parent)].children;
    ch.erase(std::remove(ch.begin(), ch.end(), entry), ch.end());
  }
}

int64_t PrefixCache::evictable_blocks() const {
  int64_t n = 0;
  for (const Entry& e : entries_)
    if (e.block >= 0 && kv_.ref_count(e.block) == 1) ++n;
  return n;
}

int64_t PrefixCache::evict(int64_t n) {
  int64_t freed = 0;
  while (freed < n) {
    // The least recently used block that only the cache holds. Eviction runs
    // only when the pool is short, so a scan is cheap enough.
    int32_t best = -1;
    uint64_t best_used = std::numeric_limits<uint64_t>::max();
    for (size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      if (e.block >= 0 && kv_.ref_count(e.block) == 1 && e.used < best_used) {
        best = static_cast<int32_t>(i);
        best_used = e.used;
      }
    }
    if (best < 0) break;
    const int64_t before = kv_.free_blocks();
    remove(best);
    freed += kv_.free_blocks() - before;
  }
  return freed;
}

}  // namespace nucleus
