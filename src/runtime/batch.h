#pragma once
// A batch is a set of rows, each one token of one sequence at one position.
// Prefill is many rows of one sequence; decode is one row per live sequence;
// continuous batching mixes both. The engine runs them all in one forward.
#include <cstdint>
#include <vector>

namespace nucleus {

struct BatchRow {
  int32_t seq = 0;  // KV-cache sequence id
  int32_t token = 0;
  bool logits = false;  // compute logits for this row
};

struct Batch {
  std::vector<BatchRow> rows;
  void add(int32_t seq, int32_t token, bool logits) { rows.push_back({seq, token, logits}); }
  void clear() { rows.clear(); }
};

}  // namespace nucleus
