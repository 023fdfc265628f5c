#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace nucleus {

BpeModel::BpeModel(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options, const std::string& where)
    : vocab_(std::move(vocab)), options_(options) {
  merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& [a, b] = merges[i];
    const int32_t ia = find(a), ib = find(b), ir = find(a + b);
    if (ia < 0 || ib < 0 || ir < 0) {
      std::string msg = where;
      msg += ": merge ";
      msg += std::to_string(i);
      msg += " ('";
      msg += a;
      msg += "' '";
      msg += b;
      msg += "') uses a token missing from the vocabulary";
      throw Error(msg);
    }
    // The first (lowest-rank) occurrence of a pair wins.
    merges_.try_emplace(key(ia, ib), Merge{static_cast<int32_t>(i), ir});
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids_[b] = options_.byte_fallback ? find(name) : -1;
  }
}

int32_t BpeModel::find(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const int32_t id = find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }

  // Symbols form a doubly linked list; a merged-away symbol gets id -1.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  auto push = [&](int32_t id) {
    const auto n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, n + 1});
  };
  bool last_unk = false;
  for (size_t i = 0; i < word.size();) {
    const size_t len = unicode::utf8_char_len(word, i);
    const int32_t id = find(word.substr(i, len));
    if (id >= 0) {
      push(id);
      last_unk = false;
    } else {
      bool all_bytes = options_.byte_fallback;
      for (size_t k = 0; all_bytes && k < len; ++k)
        all_bytes = byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
      if (all_bytes) {
        for (size_t k = 0; k < len; ++k) push(byte_ids_[static_cast<uint8_t>(word[i + k])]);
        last_unk = false;
      } else if (options_.unk_id >= 0) {
        if (!(options_.fuse_unk && last_unk)) push(options_.unk_id);
        last_unk = true;
      }
    }
    i += len;
  }
  if (syms.empty()) return;
  syms.back().next = -1;

  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t left_id, right_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t pos) {
    if (pos < 0) return;
    const int32_t nxt = syms[static_cast<size_t>(pos)].next;
    if (nxt < 0) return;
    const int32_t a = syms[static_cast<size_t>(pos)].id, b = syms[static_cast<size_t>(nxt)].id;
    auto it = merges_.find(key(a, b));
    if (it != merges_.end()) queue.push({it->second.rank, pos, a, b});
  };
  for (size_t i = 0; i + 1 < syms.size(); ++i) consider(static_cast<int32_t>(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = syms[static_cast<size_t>(c.pos)];
    // Skip candidates made stale by an earlier merge.
    if (left.id != c.left_id || left.next < 0) continue;
    Symbol& right = syms[static_cast<size_t>(left.next)];
    if (right.id != c.right_id) continue;
    left.id = merges_.at(key(c.left_id, c.right_id)).result;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) syms[static_cast<size_t>(right.next)].prev = c.pos;
    consider(left.prev);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next)
    out.push_back(syms[static_cast<size_t>(i)].id);
}

}  // namespace nucleus
