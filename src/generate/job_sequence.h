#pragma once
// One KV sequence of a job and the rows it still has to run. The same rule
// covers prefill, chunked prefill, decode and recomputation after
// pre-emption: the sequence's ids are known, `fed` of them have K/V in the
// cache, and the rows to run are ids[fed, size) — logits wanted only for the
// last one.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "generate/job.h"

namespace nucleus {

struct JobSequence {
  int32_t kv = -1;           // KV sequence, -1 when it has none (not started, pre-empted)
  std::vector<int32_t> ids;  // prompt + generated
  int64_t fed = 0;           // ids whose K/V are in the cache
  PrefixCache::Cursor cursor;
  int64_t planned = 0;  // rows planned this step
  int64_t cached = 0;   // positions taken from the prefix cache when opened

  int64_t pending() const { return static_cast<int64_t>(ids.size()) - fed; }
  bool decoding() const { return kv >= 0 && pending() == 1; }

  // Takes a KV sequence: the longest cached prefix (never the last id, whose
  // logits are wanted) when a prefix cache is given, else an empty one.
  void open(const JobContext& ctx) {
    KvCache& kv_cache = ctx.engine->kv();
    cursor = {};
    cached = 0;
    if (ctx.prefix != nullptr) {
      std::vector<int32_t> blocks;  // once per opening, not per token
      const int64_t n = ctx.prefix->match(ids, static_cast<int64_t>(ids.size()) - 1, blocks, cursor);
      kv = kv_cache.create_from(blocks, n);
      fed = n;
      cached = n;
    } else {
      kv = kv_cache.create();
      fed = 0;
    }
  }
  // Adds up to max_rows rows; returns whether the last one asks for logits.
  bool plan(Batch& batch, int64_t max_rows) {
    planned = std::min(pending(), max_rows);
    for (int64_t i = 0; i < planned; ++i)
      batch.add(kv, ids[static_cast<size_t>(fed + i)], fed + i + 1 == static_cast<int64_t>(ids.size()));
    return planned > 0 && fed + planned == static_cast<int64_t>(ids.size());
  }
  int64_t blocks_needed(const KvCache& kv_cache) const {
    return planned > 0 ? kv_cache.blocks_needed(kv, planned) : 0;
  }
  // After the forward: the planned rows are in the cache.
  void advance(const JobContext& ctx) {
    fed += planned;
    planned = 0;
    if (ctx.prefix != nullptr) ctx.prefix->publish(kv, ids, cursor);
  }
  void close(KvCache& kv_cache) {
    if (kv >= 0) kv_cache.release(kv);
    kv = -1;
    fed = 0;
    planned = 0;
    cursor = {};
  }
};

}  // namespace nucleus
