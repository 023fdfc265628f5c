#pragma once
// SentencePiece-style BPE over a scored vocabulary (tokenizer.ggml.model
// "llama", llama2.c tokenizer.bin). Encoding follows llama.cpp's SPM tokenizer:
// spaces become U+2581, a U+2581 is prepended (add_space_prefix) to the text
// and to every piece of text that follows a user-defined (or, with
// encode_with_specials, control) token found in the text, the text is
// split into UTF-8 characters, and the adjacent pair whose concatenation is a
// vocabulary token with the highest score is merged (ties: leftmost) until no
// pair merges. Characters left unmerged that are not tokens become byte
// tokens <0xXX> (or UNK when the vocabulary has none).
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace nucleus {

class SpmTokenizer final : public Tokenizer {
 public:
  // Validates the vocabulary (sizes of scores/types, special ids in range);
  // throws Error naming the field and value.
  explicit SpmTokenizer(const Vocab& vocab);

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
  // Also matches control and unknown-type tokens in the text.
  std::vector<int32_t> encode_with_specials(std::string_view text, bool add_bos) const override;
  std::string token_bytes(int32_t id, int32_t prev) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(text_.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  bool add_bos_default() const override { return add_bos_; }

  // The token whose text (in U+2581 form) is exactly `text`, or -1.
  int32_t find(std::string_view text) const;
  TokenType type(int32_t id) const;

 private:
  std::vector<int32_t> encode_impl(std::string_view text, bool add_bos, bool specials) const;
  // BPE over one run of plain text (already space-escaped); appends ids.
  void encode_piece(std::string_view text, std::vector<int32_t>& out) const;
  void check_id(int32_t id) const;

  // Heterogeneous lookup so that encoding can probe with string_views.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> text_;  // token texts as the vocabulary spells them
  std::vector<float> scores_;
  std::vector<TokenType> types_;     // inferred when the vocabulary has none
  std::vector<int16_t> byte_value_;  // Byte tokens: the byte; otherwise -1
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> index_;
  std::array<int32_t, 256> byte_token_{};  // id emitted for a raw byte; -1: none
  // Tokens matched verbatim in raw text, longest first: user-defined ones
  // always, control/unknown ones only by encode_with_specials.
  struct Special {
    std::string text;
    int32_t id;
    bool user_defined;
  };
  std::vector<Special> specials_;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = true;
  bool add_space_prefix_ = true;
};

}  // namespace nucleus
