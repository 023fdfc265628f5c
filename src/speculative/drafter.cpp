#include "speculative/drafter.h"

#include <algorithm>

#include "runtime/engine.h"
#include "sampling/select.h"
#include "util/error.h"

namespace nucleus::speculative {

LookupDrafter::LookupDrafter(int64_t max_ngram) : max_ngram_(max_ngram) {
  check(max_ngram >= 1 && max_ngram <= 64,
        "speculative lookup: ngram size must be in [1, 64], got " + std::to_string(max_ngram));
}

int64_t LookupDrafter::propose(std::span<const int32_t> ids, std::span<int32_t> out) {
  const int64_t len = static_cast<int64_t>(ids.size());
  const int64_t want = static_cast<int64_t>(out.size());
  if (want == 0) return 0;
  for (int64_t n = std::min<int64_t>(max_ngram_, len - 1); n >= 1; --n) {
    const auto tail = ids.subspan(static_cast<size_t>(len - n));
    // Earliest window equal to the tail, other than the tail itself, with at
    // least one token after it.
    for (int64_t start = 0; start + n < len; ++start) {
      if (!std::equal(tail.begin(), tail.end(), ids.begin() + start)) continue;
      const int64_t from = start + n;
      const int64_t count = std::min(want, len - from);
      if (count <= 0) continue;
      std::copy_n(ids.begin() + from, count, out.begin());
      return count;
    }
  }
  return 0;
}

DraftModelDrafter::DraftModelDrafter(Engine& draft) : engine_(draft) {}

DraftModelDrafter::~DraftModelDrafter() {
  if (seq_ >= 0) engine_.kv().release(seq_);
}

int64_t DraftModelDrafter::propose(std::span<const int32_t> ids, std::span<int32_t> out) {
  const int64_t want = std::min<int64_t>(
      static_cast<int64_t>(out.size()),
      engine_.context_length() - static_cast<int64_t>(ids.size()));
  if (want <= 0 || ids.empty()) return 0;
  KvCache& kv = engine_.kv();
  if (seq_ < 0) seq_ = kv.create();
  // Keep the common prefix, recompute the rest (rejected drafts, new tokens).
  size_t common = 0;
  while (common < cached_.size() && common < ids.size() && cached_[common] == ids[common])
    ++common;
  if (common == ids.size()) --common;  // the last id is fed again for its logits
  kv.truncate(seq_, static_cast<int64_t>(common));
  cached_.resize(common);
  Batch& batch = batch_;
  batch.clear();
  for (size_t i = common; i < ids.size(); ++i) {
    batch.add(seq_, ids[i], i + 1 == ids.size());
    cached_.push_back(ids[i]);
  }
  if (kv.blocks_needed(seq_, static_cast<int64_t>(batch.rows.size()) + want) > kv.free_blocks())
    return 0;
  engine_.forward(batch, logits_);
  int64_t n = 0;
  for (; n < want; ++n) {
    const int32_t tok = sampling::greedy(logits_);
    out[static_cast<size_t>(n)] = tok;
    if (n + 1 == want) {
      ++n;
      break;
    }
    batch.clear();
    batch.add(seq_, tok, true);
    cached_.push_back(tok);
    engine_.forward(batch, logits_);
  }
  return n;
}

}  // namespace nucleus::speculative
