#pragma once
// The BPE merge engine: splits a word into characters and applies ranked
// merges, lowest rank first (leftmost first among equal ranks), the way the
// Hugging Face `tokenizers` BPE model does.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace nucleus {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
  bool byte_fallback = false;  // unknown characters become <0xXX> byte tokens
  bool ignore_merges = false;  // a word that is itself a token is not split
  bool fuse_unk = false;       // consecutive unknown characters give one unk
  int32_t unk_id = -1;         // -1: unknown characters are dropped
};

class BpeModel {
 public:
  BpeModel() = default;
  // `merges` in rank order. `where` names the source for error messages.
  // Throws Error when a merge names a token missing from the vocabulary.
  BpeModel(TokenMap vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions options, const std::string& where);

  // Appends the ids of `word` to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  // The id of a token string, or -1.
  int32_t find(std::string_view token) const;
  const TokenMap& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  TokenMap vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  int32_t byte_ids_[256] = {};
};

}  // namespace nucleus
