#include "tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/encode_limit.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/text_file.h"

namespace nucleus {

namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Decoding, one token at a time. Steps before a Fuse act on each token, as in
// Hugging Face; steps after it act on the fused text, which per token is the
// same for character replacements and, for Strip, touches only the first token.
struct DecodeStep {
  enum class Kind { ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace };
  Kind kind;
  std::string content;  // Strip: the character; Replace: replacement; Metaspace: replacement char
  size_t start = 0, stop = 0;      // Strip
  std::shared_ptr<Regex> pattern;  // Replace
  bool strip_first_space = false;  // Metaspace with a prepend scheme other than "never"
};

class Decoder {
 public:
  void add(DecodeStep s) { steps_.push_back(std::move(s)); }
  bool has_fuse() const {
    for (const auto& s : steps_)
      if (s.kind == DecodeStep::Kind::Fuse) return true;
    return false;
  }
  std::string apply(std::string tok, bool first) const {
    bool fused = false;
    for (const auto& s : steps_) {
      switch (s.kind) {
        case DecodeStep::Kind::ByteLevel:
          // A token outside the byte alphabet (an added token) stays as it is.
          if (auto bytes = byte_level::decode(tok)) tok = std::move(*bytes);
          break;
        case DecodeStep::Kind::ByteFallback:
          if (auto b = parse_byte_token(tok)) tok = std::string(1, static_cast<char>(*b));
          break;
        case DecodeStep::Kind::Fuse:
          fused = true;
          break;
        case DecodeStep::Kind::Strip:
          if (!fused || first) strip_front(tok, s.content, s.start);
          if (!fused) strip_back(tok, s.content, s.stop);
          break;
        case DecodeStep::Kind::Replace:
          tok = s.pattern->replace_all(tok, s.content);
          break;
        case DecodeStep::Kind::Metaspace: {
          std::string out;
          for (size_t pos = 0; pos < tok.size();) {
            if (tok.compare(pos, s.content.size(), s.content) == 0) {
              // Hugging Face drops every marker of the first token, not just a leading one.
              if (!(first && s.strip_first_space)) out += ' ';
              pos += s.content.size();
            } else {
              out += tok[pos++];
            }
          }
          tok = std::move(out);
          break;
        }
      }
    }
    return tok;
  }

  static std::optional<uint8_t> parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(t[3]), lo = hex(t[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<uint8_t>(hi * 16 + lo);
  }

 private:
  static void strip_front(std::string& t, const std::string& c, size_t n) {
    for (size_t i = 0; i < n && !c.empty() && t.starts_with(c); ++i) t.erase(0, c.size());
  }
  static void strip_back(std::string& t, const std::string& c, size_t n) {
    for (size_t i = 0; i < n && !c.empty() && t.ends_with(c); ++i) t.erase(t.size() - c.size());
  }
  std::vector<DecodeStep> steps_;
};

// ---------------------------------------------------------------------------
// Added tokens are cut out of the text before the model sees it: at each
// position the longest one wins, scanning left to right.
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false, normalized = false;
};

class AddedTokenTrie {
 public:
  void add(const std::string& s, int32_t value) {
    if (s.empty()) return;
    int32_t node = 0;
    for (char ch : s) {
      const auto b = static_cast<uint8_t>(ch);
      int32_t child = -1;
      for (const auto& [k, v] : nodes_[static_cast<size_t>(node)].next)
        if (k == b) child = v;
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[static_cast<size_t>(node)].next.emplace_back(b, child);
        nodes_.emplace_back();
      }
      node = child;
    }
    nodes_[static_cast<size_t>(node)].value = value;
  }
  bool empty() const { return nodes_.size() == 1; }
  // The value of the longest entry that starts at text[pos], or -1.
  int32_t longest_at(std::string_view text, size_t pos, size_t& len) const {
    int32_t node = 0, best = -1;
    for (size_t i = pos; i < text.size(); ++i) {
      int32_t child = -1;
      for (const auto& [k, v] : nodes_[static_cast<size_t>(node)].next)
        if (k == static_cast<uint8_t>(text[i])) child = v;
      if (child < 0) break;
      node = child;
      if (nodes_[static_cast<size_t>(node)].value >= 0) {
        best = nodes_[static_cast<size_t>(node)].value;
        len = i + 1 - pos;
      }
    }
    return best;
  }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;
    int32_t value = -1;
  };
  std::vector<Node> nodes_{1};
};

bool is_space_at(std::string_view s, size_t pos, size_t& len) {
  const char32_t c = unicode::decode_utf8(s, pos, len);
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Alphanumerics and '_' (non-ASCII characters count as word characters).
bool is_word_byte(char c) {
  const auto b = static_cast<uint8_t>(c);
  return b >= 0x80 || std::isalnum(b) || c == '_';
}

enum class TokenKind : uint8_t { Normal, Silent, Added };

struct Pipeline {
  std::string name;  // for error messages
  std::vector<std::string> id_to_token;
  std::vector<TokenKind> kinds;
  std::vector<AddedToken> added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  Decoder decoder;
  int32_t bos = -1, eos = -1;
  bool add_bos = false;
};

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(Pipeline p) : p_(std::move(p)) {
    for (size_t i = 0; i < p_.added.size(); ++i)
      (p_.added[i].normalized ? normalized_trie_ : raw_trie_)
          .add(p_.added[i].content, static_cast<int32_t>(i));
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    if (text.size() > kMaxEncodeBytes)
      throw Error("tokenizer: text of " + std::to_string(text.size()) +
                  " bytes is longer than the " + std::to_string(kMaxEncodeBytes) +
                  " bytes one call encodes");
    std::vector<int32_t> ids;
    if (add_bos && p_.bos >= 0) ids.push_back(p_.bos);
    for (const auto& seg : split_added(text, raw_trie_)) {
      if (seg.token >= 0) {
        ids.push_back(seg.token);
        continue;
      }
      const std::string norm = p_.normalizer.apply(text.substr(seg.b, seg.e - seg.b));
      for (const auto& sub : split_added(norm, normalized_trie_)) {
        if (sub.token >= 0) {
          ids.push_back(sub.token);
          continue;
        }
        PreToken whole{norm.substr(sub.b, sub.e - sub.b), seg.b == 0 && sub.b == 0};
        for (const auto& piece : p_.pre_tokenizer.apply(std::move(whole)))
          p_.model.encode_word(piece.text, ids);
      }
    }
    return ids;
  }

  std::string token_bytes(int32_t id, int32_t prev) const override {
    if (id < 0 || id >= vocab_size()) {
      std::string msg = p_.name;
      msg += ": token id ";
      msg += std::to_string(id);
      msg += " is out of range (vocabulary size ";
      msg += std::to_string(vocab_size());
      msg += ")";
      throw Error(msg);
    }
    const auto i = static_cast<size_t>(id);
    if (p_.kinds[i] == TokenKind::Silent) return {};
    return p_.decoder.apply(p_.id_to_token[i], prev < 0 || prev == p_.bos);
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(p_.id_to_token.size()); }
  int32_t bos_id() const override { return p_.bos; }
  int32_t eos_id() const override { return p_.eos; }
  bool add_bos_default() const override { return p_.add_bos; }

 private:
  struct Segment {
    size_t b, e;
    int32_t token;  // an added token's id, or -1 for text
  };

  std::vector<Segment> split_added(std::string_view text, const AddedTokenTrie& trie) const {
    std::vector<Segment> out;
    if (trie.empty()) {
      if (!text.empty()) out.push_back({0, text.size(), -1});
      return out;
    }
    size_t done = 0;  // end of the last cut
    for (size_t pos = 0; pos < text.size();) {
      size_t len = 0;
      const int32_t idx = trie.longest_at(text, pos, len);
      if (idx < 0) {
        ++pos;
        continue;
      }
      const AddedToken& t = p_.added[static_cast<size_t>(idx)];
      size_t b = pos, e = pos + len;
      if (t.single_word &&
          ((b > 0 && is_word_byte(text[b - 1])) || (e < text.size() && is_word_byte(text[e])))) {
        pos = e;
        continue;
      }
      if (t.lstrip) {
        while (b > done) {
          size_t k = b - 1;
          while (k > done && (static_cast<uint8_t>(text[k]) & 0xC0) == 0x80) --k;
          size_t l;
          if (!is_space_at(text, k, l) || k + l != b) break;
          b = k;
        }
      }
      if (t.rstrip) {
        size_t l;
        while (e < text.size() && is_space_at(text, e, l)) e += l;
      }
      if (b > done) out.push_back({done, b, -1});
      out.push_back({b, e, t.id});
      done = pos = e;
    }
    if (done < text.size()) out.push_back({done, text.size(), -1});
    return out;
  }

  Pipeline p_;
  AddedTokenTrie raw_trie_, normalized_trie_;
};

// ---------------------------------------------------------------------------
// Shared assembly of the token table.

void finish_pipeline(Pipeline& p, const TokenMap& vocab, int64_t min_size = 0) {
  int64_t size = min_size;
  for (const auto& [tok, id] : vocab) size = std::max<int64_t>(size, int64_t{id} + 1);
  for (const auto& a : p.added) size = std::max<int64_t>(size, int64_t{a.id} + 1);
  // Real vocabularies are dense; a few huge ids must not allocate gigabytes.
  const auto entries = static_cast<int64_t>(vocab.size() + p.added.size());
  if (size > std::max<int64_t>(min_size, 2 * entries + 1024)) {
    std::string msg = p.name;
    msg += ": token ids reach ";
    msg += std::to_string(size - 1);
    msg += " with only ";
    msg += std::to_string(entries);
    msg += " tokens (ids too sparse)";
    throw Error(msg);
  }
  p.id_to_token.assign(static_cast<size_t>(size), std::string());
  p.kinds.assign(static_cast<size_t>(size), TokenKind::Silent);  // holes decode to nothing
  for (const auto& [tok, id] : vocab) {
    p.id_to_token[static_cast<size_t>(id)] = tok;
    p.kinds[static_cast<size_t>(id)] = TokenKind::Normal;
  }
  for (const auto& a : p.added) {
    p.id_to_token[static_cast<size_t>(a.id)] = a.content;
    p.kinds[static_cast<size_t>(a.id)] = a.special ? TokenKind::Silent : TokenKind::Added;
  }
}

// ---------------------------------------------------------------------------
// tokenizer.json

class JsonReader {
 public:
  explicit JsonReader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    std::string msg = name_;
    msg += ": ";
    msg += field;
    msg += ' ';
    msg += what;
    throw Error(msg);
  }
  [[noreturn]] void unsupported(const std::string& field, const std::string& value) const {
    std::string what = "'";
    what += value;
    what += "' is not supported";
    fail(field, what);
  }

  const json& obj(const json& j, const std::string& field) const {
    if (!j.is_object()) fail(field, "must be an object");
    return j;
  }
  std::string str(const json& j, const char* key, const std::string& path) const {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) fail(path + "." + key, "must be a string");
    return it->get<std::string>();
  }
  std::string str_or(const json& j, const char* key, const std::string& def,
                     const std::string& path) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    if (!it->is_string()) fail(path + "." + key, "must be a string");
    return it->get<std::string>();
  }
  bool boolean(const json& j, const char* key, bool def, const std::string& path) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    if (!it->is_boolean()) fail(path + "." + key, "must be true or false");
    return it->get<bool>();
  }
  size_t count(const json& j, const char* key, size_t def, const std::string& path) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    if (!it->is_number_unsigned()) fail(path + "." + key, "must be a non-negative integer");
    return it->get<size_t>();
  }
  const std::string& name() const { return name_; }
  // Sequences may nest; a hostile file must not exhaust the stack.
  void check_depth(const std::string& path) const {
    if (std::count(path.begin(), path.end(), '[') > 8)
      fail(path, "nests Sequences more than 8 deep");
  }

  // {"String": s} or {"Regex": r}
  std::shared_ptr<Regex> pattern(const json& j, const std::string& path) const {
    if (!j.is_object()) fail(path, "must be an object with String or Regex");
    if (auto it = j.find("String"); it != j.end() && it->is_string())
      return std::make_shared<Regex>(it->get<std::string>(), true, name_ + ": " + path);
    if (auto it = j.find("Regex"); it != j.end() && it->is_string())
      return std::make_shared<Regex>(it->get<std::string>(), false, name_ + ": " + path);
    fail(path, "must hold a String or Regex");
  }

 private:
  std::string name_;
};

void parse_normalizer(const JsonReader& r, const json& j, const std::string& path,
                      Normalizer& out) {
  if (j.is_null()) return;
  r.check_depth(path);
  r.obj(j, path);
  const std::string type = r.str(j, "type", path);
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) r.fail(path + ".normalizers", "must be an array");
    for (size_t i = 0; i < it->size(); ++i)
      parse_normalizer(r, (*it)[i], path + ".normalizers[" + std::to_string(i) + "]", out);
  } else if (type == "Prepend") {
    out.add({NormalizerStep::Kind::Prepend, r.str(j, "prepend", path), nullptr});
  } else if (type == "Replace") {
    auto it = j.find("pattern");
    if (it == j.end()) r.fail(path + ".pattern", "is missing");
    out.add({NormalizerStep::Kind::Replace, r.str(j, "content", path),
             r.pattern(*it, path + ".pattern")});
  } else if (type == "NFC") {
    out.add({NormalizerStep::Kind::Nfc, {}, nullptr});
  } else if (type == "Strip") {
    // Whitespace (the Unicode White_Space set, which PCRE2's UCP \s matches) at either end.
    if (r.boolean(j, "strip_left", true, path))
      out.add({NormalizerStep::Kind::Replace,
               {},
               std::make_shared<Regex>(R"(\A\s+)", false, r.name() + ": " + path)});
    if (r.boolean(j, "strip_right", true, path))
      out.add({NormalizerStep::Kind::Replace,
               {},
               std::make_shared<Regex>(R"(\s+\z)", false, r.name() + ": " + path)});
  } else {
    r.unsupported(path + ".type", type);
  }
}

PreTokenizerStep::Prepend prepend_scheme(const JsonReader& r, const json& j,
                                         const std::string& path) {
  using P = PreTokenizerStep::Prepend;
  if (auto it = j.find("prepend_scheme"); it != j.end() && !it->is_null()) {
    const std::string s = r.str(j, "prepend_scheme", path);
    if (s == "always") return P::Always;
    if (s == "first") return P::First;
    if (s == "never") return P::Never;
    r.unsupported(path + ".prepend_scheme", s);
  }
  // Older files say add_prefix_space instead.
  return r.boolean(j, "add_prefix_space", true, path) ? P::Always : P::Never;
}

std::string single_char(const JsonReader& r, const json& j, const char* key,
                        const std::string& path) {
  std::string s = r.str(j, key, path);
  if (s.empty() || unicode::utf8_char_len(s, 0) != s.size())
    r.fail(path + "." + key, "must be one character");
  return s;
}

void parse_pre_tokenizer(const JsonReader& r, const json& j, const std::string& path,
                         PreTokenizer& out) {
  if (j.is_null()) return;
  r.check_depth(path);
  r.obj(j, path);
  const std::string type = r.str(j, "type", path);
  PreTokenizerStep step;
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) r.fail(path + ".pretokenizers", "must be an array");
    for (size_t i = 0; i < it->size(); ++i)
      parse_pre_tokenizer(r, (*it)[i], path + ".pretokenizers[" + std::to_string(i) + "]", out);
    return;
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::Split;
    auto it = j.find("pattern");
    if (it == j.end()) r.fail(path + ".pattern", "is missing");
    step.pattern = r.pattern(*it, path + ".pattern");
    const std::string b = r.str(j, "behavior", path);
    if (b == "Removed")
      step.behavior = SplitBehavior::Removed;
    else if (b == "Isolated")
      step.behavior = SplitBehavior::Isolated;
    else if (b == "MergedWithPrevious")
      step.behavior = SplitBehavior::MergedWithPrevious;
    else if (b == "MergedWithNext")
      step.behavior = SplitBehavior::MergedWithNext;
    else if (b == "Contiguous")
      step.behavior = SplitBehavior::Contiguous;
    else
      r.unsupported(path + ".behavior", b);
    step.invert = r.boolean(j, "invert", false, path);
  } else if (type == "Digits") {
    // Numeric characters (categories Nd, Nl, No = \p{N}) apart from the rest,
    // each alone or in runs.
    step.kind = PreTokenizerStep::Kind::Split;
    step.pattern = std::make_shared<Regex>(R"(\p{N})", false, r.name() + ": " + path);
    step.behavior = r.boolean(j, "individual_digits", false, path) ? SplitBehavior::Isolated
                                                                   : SplitBehavior::Contiguous;
  } else if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerStep::Kind::Split;
    step.pattern = std::make_shared<Regex>(R"(\s+)", false, r.name() + ": " + path);
    step.behavior = SplitBehavior::Removed;
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::ByteLevel;
    step.add_prefix_space = r.boolean(j, "add_prefix_space", true, path);
    if (r.boolean(j, "use_regex", true, path))
      step.pattern = std::make_shared<Regex>(regex_patterns::kGpt2, false, r.name() + ": " + path);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::Metaspace;
    step.replacement = single_char(r, j, "replacement", path);
    step.prepend = prepend_scheme(r, j, path);
    step.split = r.boolean(j, "split", true, path);
  } else {
    r.unsupported(path + ".type", type);
  }
  out.add(std::move(step));
}

void parse_decoder(const JsonReader& r, const json& j, const std::string& path, Decoder& out) {
  if (j.is_null()) return;
  r.check_depth(path);
  r.obj(j, path);
  const std::string type = r.str(j, "type", path);
  DecodeStep step;
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) r.fail(path + ".decoders", "must be an array");
    for (size_t i = 0; i < it->size(); ++i)
      parse_decoder(r, (*it)[i], path + ".decoders[" + std::to_string(i) + "]", out);
    return;
  } else if (type == "ByteLevel") {
    step.kind = DecodeStep::Kind::ByteLevel;
  } else if (type == "ByteFallback") {
    step.kind = DecodeStep::Kind::ByteFallback;
  } else if (type == "Fuse") {
    step.kind = DecodeStep::Kind::Fuse;
  } else if (type == "Strip") {
    step.kind = DecodeStep::Kind::Strip;
    step.content = single_char(r, j, "content", path);
    step.start = r.count(j, "start", 0, path);
    step.stop = r.count(j, "stop", 0, path);
    // Stripping the end of fused text needs the whole sequence, which
    // token-at-a-time decoding never sees.
    if (step.stop > 0 && out.has_fuse())
      r.fail(path + ".stop", "> 0 after a Fuse decoder is not supported");
  } else if (type == "Replace") {
    step.kind = DecodeStep::Kind::Replace;
    auto it = j.find("pattern");
    if (it == j.end()) r.fail(path + ".pattern", "is missing");
    step.pattern = r.pattern(*it, path + ".pattern");
    step.content = r.str(j, "content", path);
  } else if (type == "Metaspace") {
    step.kind = DecodeStep::Kind::Metaspace;
    step.content = single_char(r, j, "replacement", path);
    step.strip_first_space = prepend_scheme(r, j, path) != PreTokenizerStep::Prepend::Never;
  } else {
    r.unsupported(path + ".type", type);
  }
  out.add(std::move(step));
}

// Finds the special tokens a post-processor puts before the text (the BOS).
void parse_post_processor(const JsonReader& r, const json& j, const std::string& path,
                          std::optional<std::string>& template_bos) {
  if (j.is_null()) return;
  r.check_depth(path);
  r.obj(j, path);
  const std::string type = r.str(j, "type", path);
  if (type == "Sequence") {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) r.fail(path + ".processors", "must be an array");
    for (size_t i = 0; i < it->size(); ++i)
      parse_post_processor(r, (*it)[i], path + ".processors[" + std::to_string(i) + "]",
                           template_bos);
  } else if (type == "ByteLevel") {
    // Adjusts offsets only.
  } else if (type == "TemplateProcessing") {
    auto it = j.find("single");
    if (it == j.end() || !it->is_array()) r.fail(path + ".single", "must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& piece = (*it)[i];
      if (piece.contains("Sequence")) break;
      auto sp = piece.find("SpecialToken");
      if (sp == piece.end() || !sp->is_object()) continue;
      if (template_bos)
        r.fail(path + ".single", "with more than one token before the text is not supported");
      template_bos = r.str(*sp, "id", path + ".single[" + std::to_string(i) + "].SpecialToken");
      // The template names a special token whose ids the special_tokens map holds.
      if (auto st = j.find("special_tokens"); st != j.end() && st->is_object()) {
        auto e = st->find(*template_bos);
        if (e != st->end() && e->is_object()) {
          auto tokens = e->find("tokens");
          if (tokens != e->end() && tokens->is_array() && tokens->size() == 1 &&
              (*tokens)[0].is_string())
            template_bos = (*tokens)[0].get<std::string>();
        }
      }
    }
  } else {
    r.unsupported(path + ".type", type);
  }
}

// The content of a tokenizer_config.json token entry: a string, an
// AddedToken object, or null.
std::optional<std::string> config_token(const JsonReader& r, const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return r.str(*it, "content", key);
  r.fail(key, "must be a string, an object with content, or null");
}

int32_t lookup_token(const Pipeline& p, const TokenMap& vocab, const std::string& tok) {
  for (const auto& a : p.added)
    if (a.content == tok) return a.id;
  auto it = vocab.find(tok);
  return it == vocab.end() ? -1 : it->second;
}

// A merge written "a b". Tokens may themselves hold spaces (the Llama 2
// vocabulary has U+0020 runs), so when there are several spaces the one
// split whose two sides are both tokens is taken.
std::optional<std::pair<std::string, std::string>> split_merge(const std::string& s,
                                                               const TokenMap& vocab) {
  const size_t sp = s.find(' ');
  if (sp == std::string::npos) return std::nullopt;
  if (s.find(' ', sp + 1) == std::string::npos) return std::pair{s.substr(0, sp), s.substr(sp + 1)};
  std::optional<std::pair<std::string, std::string>> found;
  for (size_t i = sp; i != std::string::npos; i = s.find(' ', i + 1)) {
    if (i == 0 || i + 1 == s.size()) continue;
    std::string a = s.substr(0, i), b = s.substr(i + 1);
    if (vocab.find(a) == vocab.end() || vocab.find(b) == vocab.end()) continue;
    if (found) return std::nullopt;  // ambiguous
    found = std::pair{std::move(a), std::move(b)};
  }
  return found;
}

std::unique_ptr<Tokenizer> parse_hf(const std::string& tokenizer_json,
                                    const std::string& config_json, const std::string& name,
                                    const std::string& config_name) {
  JsonReader r(name);
  json j;
  try {
    j = json::parse(tokenizer_json);
  } catch (const json::exception& e) {
    r.fail("(file)", std::string("is not valid JSON: ") + e.what());
  }
  r.obj(j, "(top level)");
  Pipeline p;
  p.name = name;

  // --- model
  auto mit = j.find("model");
  if (mit == j.end() || !mit->is_object()) r.fail("model", "must be an object");
  const json& m = *mit;
  const std::string type = r.str_or(m, "type", "BPE", "model");
  if (type != "BPE") r.unsupported("model.type", type);
  if (auto d = m.find("dropout");
      d != m.end() && !d->is_null() && !(d->is_number() && d->get<double>() == 0.0))
    r.fail("model.dropout", "must be null (BPE dropout is not supported)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const std::string v = r.str_or(m, key, "", "model");
    if (!v.empty()) r.unsupported(std::string("model.") + key, v);
  }
  auto vit = m.find("vocab");
  if (vit == m.end() || !vit->is_object()) r.fail("model.vocab", "must be an object");
  TokenMap vocab;
  vocab.reserve(vit->size());
  constexpr int64_t kMaxId = int64_t{1} << 24;
  for (const auto& [tok, id] : vit->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxId)
      r.fail("model.vocab['" + tok + "']", "must be an id in [0, 2^24)");
    vocab.emplace(tok, id.get<int32_t>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  auto git = m.find("merges");
  if (git != m.end() && !git->is_null()) {
    if (!git->is_array()) r.fail("model.merges", "must be an array");
    merges.reserve(git->size());
    for (size_t i = 0; i < git->size(); ++i) {
      const json& e = (*git)[i];
      if (e.is_string()) {
        auto split = split_merge(e.get_ref<const std::string&>(), vocab);
        if (!split)
          r.fail("model.merges[" + std::to_string(i) + "]",
                 "must be two tokens separated by one space");
        merges.push_back(std::move(*split));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        r.fail("model.merges[" + std::to_string(i) + "]", "must be \"a b\" or [\"a\", \"b\"]");
      }
    }
  }
  BpeOptions opt;
  opt.byte_fallback = r.boolean(m, "byte_fallback", false, "model");
  opt.ignore_merges = r.boolean(m, "ignore_merges", false, "model");
  opt.fuse_unk = r.boolean(m, "fuse_unk", false, "model");
  const std::string unk = r.str_or(m, "unk_token", "", "model");
  if (!unk.empty()) {
    auto u = vocab.find(unk);
    if (u == vocab.end()) r.fail("model.unk_token", "'" + unk + "' is not in model.vocab");
    opt.unk_id = u->second;
  }

  // --- added tokens
  if (auto ait = j.find("added_tokens"); ait != j.end() && !ait->is_null()) {
    if (!ait->is_array()) r.fail("added_tokens", "must be an array");
    for (size_t i = 0; i < ait->size(); ++i) {
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      const json& a = r.obj((*ait)[i], path);
      AddedToken t;
      auto id = a.find("id");
      if (id == a.end() || !id->is_number_integer() || id->get<int64_t>() < 0 ||
          id->get<int64_t>() >= kMaxId)
        r.fail(path + ".id", "must be an id in [0, 2^24)");
      t.id = id->get<int32_t>();
      t.content = r.str(a, "content", path);
      t.special = r.boolean(a, "special", false, path);
      t.lstrip = r.boolean(a, "lstrip", false, path);
      t.rstrip = r.boolean(a, "rstrip", false, path);
      t.single_word = r.boolean(a, "single_word", false, path);
      t.normalized = r.boolean(a, "normalized", !t.special, path);
      p.added.push_back(std::move(t));
    }
  }

  if (auto it = j.find("normalizer"); it != j.end())
    parse_normalizer(r, *it, "normalizer", p.normalizer);
  if (auto it = j.find("pre_tokenizer"); it != j.end())
    parse_pre_tokenizer(r, *it, "pre_tokenizer", p.pre_tokenizer);
  if (auto it = j.find("decoder"); it != j.end()) parse_decoder(r, *it, "decoder", p.decoder);
  std::optional<std::string> template_bos;
  if (auto it = j.find("post_processor"); it != j.end())
    parse_post_processor(r, *it, "post_processor", template_bos);

  p.model = BpeModel(std::move(vocab), merges, opt, name + ": model.merges");
  finish_pipeline(p, p.model.vocab());

  // --- special ids: tokenizer_config.json first, then the template.
  std::optional<std::string> bos = template_bos, eos;
  p.add_bos = template_bos.has_value();
  bool eos_from_config = false;
  if (!config_json.empty()) {
    JsonReader cr(config_name);
    json c;
    try {
      c = json::parse(config_json);
    } catch (const json::exception& e) {
      cr.fail("(file)", std::string("is not valid JSON: ") + e.what());
    }
    cr.obj(c, "(top level)");
    if (c.contains("bos_token")) bos = config_token(cr, c, "bos_token");
    if (c.contains("eos_token")) {
      eos = config_token(cr, c, "eos_token");
      eos_from_config = true;
    }
    p.add_bos = cr.boolean(c, "add_bos_token", p.add_bos, "(top level)");
  }
  if (!eos_from_config) {
    // Without a config, take the conventional end-of-text token if present.
    for (const char* cand : {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"})
      if (lookup_token(p, p.model.vocab(), cand) >= 0) {
        eos = cand;
        break;
      }
  }
  if (bos) {
    p.bos = lookup_token(p, p.model.vocab(), *bos);
    if (p.bos < 0) r.fail("bos_token", "'" + *bos + "' is not in the vocabulary");
  }
  if (eos) {
    p.eos = lookup_token(p, p.model.vocab(), *eos);
    if (p.eos < 0) r.fail("eos_token", "'" + *eos + "' is not in the vocabulary");
  }
  if (p.bos < 0) p.add_bos = false;
  return std::make_unique<BpeTokenizer>(std::move(p));
}

Pipeline byte_level_pipeline(const std::string& name, const char* regex) {
  Pipeline p;
  p.name = name;
  PreTokenizerStep split;
  split.kind = PreTokenizerStep::Kind::Split;
  split.pattern = std::make_shared<Regex>(regex, false, name);
  split.behavior = SplitBehavior::Isolated;
  p.pre_tokenizer.add(split);
  PreTokenizerStep bl;
  bl.kind = PreTokenizerStep::Kind::ByteLevel;
  p.pre_tokenizer.add(bl);
  p.decoder.add({DecodeStep::Kind::ByteLevel, {}, 0, 0, nullptr, false});
  return p;
}

}  // namespace

std::unique_ptr<Tokenizer> parse_hf_tokenizer(const std::string& tokenizer_json,
                                              const std::string& config_json,
                                              const std::string& name) {
  return parse_hf(tokenizer_json, config_json, name, "tokenizer_config.json");
}

std::unique_ptr<Tokenizer> parse_gpt2_tokenizer(const std::string& encoder_json,
                                                const std::string& vocab_bpe) {
  JsonReader r("encoder.json");
  json j;
  try {
    j = json::parse(encoder_json);
  } catch (const json::exception& e) {
    r.fail("(file)", std::string("is not valid JSON: ") + e.what());
  }
  r.obj(j, "(top level)");
  TokenMap vocab;
  for (const auto& [tok, id] : j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t{1} << 24))
      r.fail("'" + tok + "'", "must map to an id in [0, 2^24)");
    vocab.emplace(tok, id.get<int32_t>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream in(vocab_bpe);
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      throw Error("vocab.bpe: line " + std::to_string(line_no) +
                  " must be two tokens separated by one space");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  Pipeline p = byte_level_pipeline("encoder.json", regex_patterns::kGpt2);
  // GPT-2 marks document boundaries with one token, used as BOS and EOS.
  if (auto it = vocab.find("<|endoftext|>"); it != vocab.end()) {
    p.added.push_back({"<|endoftext|>", it->second, true, false, false, false, false});
    p.bos = p.eos = it->second;
  }
  p.model = BpeModel(std::move(vocab), merges, BpeOptions{}, "vocab.bpe");
  finish_pipeline(p, p.model.vocab());
  return std::make_unique<BpeTokenizer>(std::move(p));
}

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path file = path;
  std::error_code ec;
  if (fs::is_directory(file, ec)) {
    if (fs::exists(file / "tokenizer.json")) {
      file /= "tokenizer.json";
    } else if (fs::exists(file / "encoder.json") && fs::exists(file / "vocab.bpe")) {
      return parse_gpt2_tokenizer(read_text_file((file / "encoder.json").string()),
                                  read_text_file((file / "vocab.bpe").string()));
    } else {
      throw Error(path + ": no tokenizer.json (or encoder.json + vocab.bpe) in this directory");
    }
  }
  const std::string text = read_text_file(file.string());
  const fs::path config = file.parent_path() / "tokenizer_config.json";
  std::string config_text;
  if (fs::exists(config, ec)) config_text = read_text_file(config.string());
  return parse_hf(text, config_text, file.string(), config.string());
}

std::unique_ptr<Tokenizer> make_bpe_tokenizer_from_vocab(const Vocab& v) {
  const std::string name = "GGUF tokenizer";
  if (v.model != "gpt2")
    throw Error(name + ": tokenizer.ggml.model '" + v.model + "' is not byte-level BPE");
  const char* regex = nullptr;
  bool llama3 = false, nfc = false;
  if (v.pre == "llama-bpe" || v.pre == "llama3") {
    regex = regex_patterns::kLlama3;
    llama3 = true;
  } else if (v.pre == "qwen2") {
    regex = regex_patterns::kQwen2;
    nfc = true;  // Qwen's tokenizer.json normalizes to NFC before splitting
  } else if (v.pre == "gpt-2" || v.pre == "default" || v.pre.empty()) {
    regex = regex_patterns::kGpt2;
  } else {
    throw Error(name + ": tokenizer.ggml.pre '" + v.pre +
                "' is not supported (known: llama-bpe, llama3, qwen2, gpt-2, default)");
  }
  if (!v.types.empty() && v.types.size() != v.tokens.size())
    throw Error(name + ": tokenizer.ggml.token_type has " + std::to_string(v.types.size()) +
                " entries for " + std::to_string(v.tokens.size()) + " tokens");
  Pipeline p = byte_level_pipeline(name, regex);
  if (nfc) p.normalizer.add({NormalizerStep::Kind::Nfc, {}, nullptr});
  TokenMap vocab;
  vocab.reserve(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    vocab.emplace(v.tokens[i], id);
    const TokenType t = v.types.empty() ? TokenType::Normal : v.types[i];
    if (t == TokenType::Control || t == TokenType::UserDefined)
      p.added.push_back({v.tokens[i], id, t == TokenType::Control, false, false, false, false});
  }
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& s = v.merges[i];
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
      throw Error(name + ": tokenizer.ggml.merges[" + std::to_string(i) +
                  "] must be two tokens separated by one space");
    merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
  }
  BpeOptions opt;
  opt.ignore_merges = llama3;
  p.model = BpeModel(std::move(vocab), merges, opt, name + ": tokenizer.ggml.merges");
  finish_pipeline(p, p.model.vocab(), v.size());
  // A GGUF vocabulary may repeat a string (padding entries); every id keeps
  // its own text even though encoding can only produce the first.
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (p.kinds[i] == TokenKind::Silent && p.id_to_token[i].empty()) p.kinds[i] = TokenKind::Normal;
    p.id_to_token[i] = v.tokens[i];
  }
  for (size_t i = 0; i < v.types.size(); ++i)
    if (v.types[i] == TokenType::Unused || v.types[i] == TokenType::Unknown)
      p.kinds[i] = TokenKind::Silent;
  auto check_id = [&](int32_t id, const char* field) {
    if (id >= v.size())
      throw Error(name + ": tokenizer.ggml." + field + " " + std::to_string(id) +
                  " is out of range");
    return id < 0 ? -1 : id;
  };
  p.bos = check_id(v.bos_id, "bos_token_id");
  p.eos = check_id(v.eos_id, "eos_token_id");
  p.add_bos = v.add_bos && p.bos >= 0;
  return std::make_unique<BpeTokenizer>(std::move(p));
}

}  // namespace nucleus
