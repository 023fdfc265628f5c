#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <queue>

#include "tokenizer/encode_limit.h"
#include "util/error.h"

namespace nucleus {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string escape_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (char c : s) {
    if (c == ' ') {
      out += kSpace;
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.substr(i, kSpace.size()) == kSpace) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Length of the UTF-8 character that starts with `lead`; a stray continuation
// or invalid lead byte counts as a one-byte character (it will fall back to a
// byte token), as llama.cpp and SentencePiece do.
size_t utf8_char_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0xXX>" -> XX, anything else -> -1.
int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  const int hi = hex_digit(t[3]);
  const int lo = hex_digit(t[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

std::string byte_token_text(int b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string t = "<0x";
  t += kHex[b >> 4];
  t += kHex[b & 15];
  t += '>';
  return t;
}

}  // namespace

SpmTokenizer::SpmTokenizer(const Vocab& vocab)
    : bos_(vocab.bos_id),
      eos_(vocab.eos_id),
      unk_(vocab.unk_id),
      add_bos_(vocab.add_bos),
      add_space_prefix_(vocab.add_space_prefix) {
  const size_t n = vocab.tokens.size();
  check(n > 0, "tokenizer: vocabulary is empty");
  check(n <= static_cast<size_t>(INT32_MAX),
        "tokenizer: vocabulary size " + std::to_string(n) + " exceeds int32");
  check(vocab.scores.empty() || vocab.scores.size() == n,
        "tokenizer: vocabulary has " + std::to_string(n) + " tokens but " +
            std::to_string(vocab.scores.size()) + " scores");
  check(vocab.types.empty() || vocab.types.size() == n,
        "tokenizer: vocabulary has " + std::to_string(n) + " tokens but " +
            std::to_string(vocab.types.size()) + " token types");
  const auto check_special = [&](int32_t id, const char* field) {
    check(id >= -1 && id < static_cast<int64_t>(n),
          std::string("tokenizer: ") + field + " " + std::to_string(id) +
              " is outside the vocabulary of " + std::to_string(n));
  };
  check_special(bos_, "bos_id");
  check_special(eos_, "eos_id");
  check_special(unk_, "unk_id");

  // Pieces are matched as the vocabulary spells them (below, a piece with
  // plain spaces also under its U+2581 spelling when no piece has that one).
  text_ = vocab.tokens;
  scores_ = vocab.scores.empty() ? std::vector<float>(n, 0.0f) : vocab.scores;
  // A NaN would break the merge queue's ordering.
  for (size_t i = 0; i < n; ++i) {
    check(!std::isnan(scores_[i]), "tokenizer: score of token " + std::to_string(i) + " is NaN");
  }

  types_.resize(n);
  byte_value_.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    const int b = parse_byte_token(vocab.tokens[i]);
    TokenType t;
    if (!vocab.types.empty()) {
      t = vocab.types[i];
    } else if (id == bos_ || id == eos_) {
      t = TokenType::Control;
    } else if (id == unk_) {
      t = TokenType::Unknown;
    } else if (b >= 0) {
      t = TokenType::Byte;
    } else {
      t = TokenType::Normal;
    }
    types_[i] = t;
    if (t == TokenType::Byte && b >= 0) byte_value_[i] = static_cast<int16_t>(b);
    if (t == TokenType::UserDefined || t == TokenType::Control || t == TokenType::Unknown) {
      std::string_view match = vocab.tokens[i];
      // llama2.c's export writes BOS/EOS as "\n<s>\n" and "\n</s>\n".
      if (vocab.types.empty()) {
        while (!match.empty() && match.front() == '\n') match.remove_prefix(1);
        while (!match.empty() && match.back() == '\n') match.remove_suffix(1);
      }
      if (!match.empty())
        specials_.push_back({std::string(match), id, t == TokenType::UserDefined});
    }
    // A later duplicate wins, as in llama.cpp's text-to-token map.
    index_[text_[i]] = id;
  }
  // llama2.c's tokenizer.bin stores pieces with plain spaces; SentencePiece
  // escapes the text, so such a piece is also found under its escaped
  // spelling — but never in place of a piece spelled that way: Llama 2's
  // tokenizer.json has both "\u2581" (29871) and " " (30081, U+00A0 in
  // tokenizer.model), and "\u2581" must stay 29871.
  for (size_t i = 0; i < n; ++i)
    if (text_[i].find(' ') != std::string::npos)
      index_.try_emplace(escape_spaces(text_[i]), static_cast<int32_t>(i));
  std::stable_sort(specials_.begin(), specials_.end(), [](const Special& a, const Special& b) {
    return a.text.size() > b.text.size();
  });

  for (int b = 0; b < 256; ++b) {
    int32_t id = find(byte_token_text(b));
    if (id < 0) id = find(escape_spaces(std::string(1, static_cast<char>(b))));
    byte_token_[b] = id >= 0 ? id : unk_;
  }
}

int32_t SpmTokenizer::find(std::string_view text) const {
  const auto it = index_.find(text);
  return it == index_.end() ? -1 : it->second;
}

void SpmTokenizer::check_id(int32_t id) const {
  // Runs for every streamed token: the message is built only on failure.
  if (id < 0 || id >= static_cast<int64_t>(text_.size()))
    throw Error("tokenizer: token id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(text_.size()));
}

TokenType SpmTokenizer::type(int32_t id) const {
  check_id(id);
  return types_[id];
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_bos) const {
  return encode_impl(text, add_bos, false);
}

std::vector<int32_t> SpmTokenizer::encode_with_specials(std::string_view text, bool add_bos) const {
  return encode_impl(text, add_bos, true);
}

std::vector<int32_t> SpmTokenizer::encode_impl(std::string_view text, bool add_bos,
                                               bool specials) const {
  std::vector<int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  if (text.empty()) return out;
  // Symbol offsets are 32-bit; the escaped text can grow by 3x.
  static_assert(kMaxEncodeBytes < UINT32_MAX / 3);
  if (text.size() > kMaxEncodeBytes)
    throw Error("tokenizer: text of " + std::to_string(text.size()) + " bytes is longer than the " +
                std::to_string(kMaxEncodeBytes) + " bytes one call encodes");

  // Split the raw text around special tokens, longest first. llama.cpp does
  // this for user-defined tokens even when special tokens are not parsed.
  struct Fragment {
    int32_t token;  // -1: raw text [begin, end)
    size_t begin, end;
  };
  std::vector<Fragment> fragments{{-1, 0, text.size()}};
  for (const Special& sp : specials_) {
    if (!specials && !sp.user_defined) continue;
    const std::string_view ut = sp.text;
    const int32_t uid = sp.id;
    std::vector<Fragment> next;
    next.reserve(fragments.size());
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.begin;
      while (pos < f.end) {
        const size_t hit = text.substr(0, f.end).find(ut, pos);
        if (hit == std::string_view::npos) break;
        if (hit > pos) next.push_back({-1, pos, hit});
        next.push_back({uid, hit, hit + ut.size()});
        pos = hit + ut.size();
      }
      if (pos < f.end) next.push_back({-1, pos, f.end});
    }
    fragments = std::move(next);
  }

  bool after_special = true;  // the text start counts as following a special token
  std::string piece;
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    piece.clear();
    if (add_space_prefix_ && after_special) piece += kSpace;
    piece += escape_spaces(text.substr(f.begin, f.end - f.begin));
    encode_piece(piece, out);
    after_special = false;
  }
  return out;
}

void SpmTokenizer::encode_piece(std::string_view text, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t prev, next;
    uint32_t begin, len;  // len 0: merged into its left neighbour
  };
  std::vector<Symbol> sym;
  sym.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t len =
        std::min(utf8_char_len(static_cast<unsigned char>(text[i])), text.size() - i);
    const auto idx = static_cast<int32_t>(sym.size());
    sym.push_back({idx - 1, idx + 1, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
    i += len;
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  struct Bigram {
    float score;
    int32_t left, right;
    uint32_t len;  // combined length when queued; stale if it changed
  };
  // Highest score first; among equal scores the leftmost pair.
  const auto lower = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(lower)> queue(lower);
  const auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t len = sym[l].len + sym[r].len;
    const int32_t id = find(text.substr(sym[l].begin, len));
    if (id < 0) return;
    queue.push({scores_[id], l, r, len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_pair(l.prev, b.left);
    try_pair(b.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    const std::string_view s = text.substr(sym[i].begin, sym[i].len);
    const int32_t id = find(s);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : s) {
      const int32_t bid = byte_token_[static_cast<unsigned char>(c)];
      check(bid >= 0, "tokenizer: vocabulary has no token for byte " +
                          byte_token_text(static_cast<unsigned char>(c)) + " and no unk_id");
      out.push_back(bid);
    }
  }
}

std::string SpmTokenizer::token_bytes(int32_t id, int32_t prev) const {
  check_id(id);
  switch (types_[id]) {
    case TokenType::Control:
    case TokenType::Unused:
      return {};
    case TokenType::Byte:
      if (byte_value_[id] >= 0) return std::string(1, static_cast<char>(byte_value_[id]));
      break;
    case TokenType::UserDefined:
      return unescape_spaces(text_[id]);
    case TokenType::Unknown:
      // SentencePiece's surface for an unknown piece.
      return prev == bos_ && add_space_prefix_ ? "\xE2\x81\x87 " : " \xE2\x81\x87 ";
    default:
      break;
  }
  std::string s = unescape_spaces(text_[id]);
  // The space SentencePiece prefixed to the text is not part of it.
  if (prev >= 0 && prev == bos_ && add_space_prefix_ && !s.empty() && s[0] == ' ') s.erase(0, 1);
  return s;
}

}  // namespace nucleus
