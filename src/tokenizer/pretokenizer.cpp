#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace nucleus {

namespace regex_patterns {
// GPT-2 (also what the ByteLevel pre-tokenizer uses with use_regex).
const char* const kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}  // namespace regex_patterns

namespace {
pcre2_code* as_code(const std::shared_ptr<void>& p) {
  return static_cast<pcre2_code*>(p.get());
}
}  // namespace

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) {
  if (literal) {
    if (pattern.empty()) throw Error(where + ": an empty string pattern would match everywhere");
    literal_ = pattern;
    return;
  }
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &err, &err_offset, nullptr);
  if (code != nullptr) {
    pcre2_code* valid =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      options & ~PCRE2_MATCH_INVALID_UTF, &err, &err_offset, nullptr);
    if (valid != nullptr) {
      pcre2_jit_compile(valid, PCRE2_JIT_COMPLETE);
      code_valid_ = std::shared_ptr<void>(
          valid, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
    }
  }
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    std::string msg = where;
    msg += ": cannot compile regex '";
    msg += pattern;
    msg += "' at offset ";
    msg += std::to_string(err_offset);
    msg += ": ";
    msg += reinterpret_cast<const char*>(buf);
    throw Error(msg);
  }
  // The JIT is an optimisation only; the interpreter gives the same matches.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ =
      std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  if (!code_) {
    for (size_t pos = text.find(literal_); pos != std::string_view::npos;
         pos = text.find(literal_, pos + literal_.size()))
      out.emplace_back(pos, pos + literal_.size());
    return out;
  }
  // Valid text (checked once here) runs the pattern compiled without
  // PCRE2_MATCH_INVALID_UTF and skips PCRE2's per-call UTF check.
  const bool valid = code_valid_ && unicode::is_valid_utf8(text);
  pcre2_code* code = as_code(valid ? code_valid_ : code_);
  const uint32_t match_options = valid ? PCRE2_NO_UTF_CHECK : 0;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  if (!md) throw Error("regex: out of memory creating match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    const int rc =
        pcre2_match(code, subject, text.size(), offset, match_options, md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof(buf));
      std::string msg = "regex match failed: ";
      msg += reinterpret_cast<const char*>(buf);
      throw Error(msg);
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      offset = e;
    } else {
      // An empty match: step over one character so the search moves on.
      if (b >= text.size()) break;
      offset = b + unicode::utf8_char_len(text, b);
    }
  }
  return out;
}

std::string Regex::replace_all(std::string_view text, std::string_view replacement) const {
  std::string out;
  size_t prev = 0;
  for (const auto& [b, e] : find_all(text)) {
    out.append(text.substr(prev, b - prev));
    out.append(replacement);
    prev = e;
  }
  out.append(text.substr(prev));
  return out;
}

std::string Normalizer::apply(std::string_view text) const {
  std::string s(text);
  for (const auto& step : steps_) {
    switch (step.kind) {
      case NormalizerStep::Kind::Prepend:
        // Hugging Face prepends only to non-empty text.
        if (!s.empty()) s = step.text + s;
        break;
      case NormalizerStep::Kind::Replace:
        s = step.pattern->replace_all(s, step.text);
        break;
      case NormalizerStep::Kind::Nfc:
        s = unicode::nfc(s);
        break;
    }
  }
  return s;
}

std::vector<std::string> split_text(std::string_view text,
                                    const std::vector<std::pair<size_t, size_t>>& matches,
                                    SplitBehavior behavior, bool invert) {
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) segs.push_back({prev, b, invert});
    segs.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < text.size()) segs.push_back({prev, text.size(), invert});

  std::vector<Seg> merged;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (const auto& s : segs)
        if (!s.match) merged.push_back(s);
      break;
    case SplitBehavior::Isolated:
      merged = segs;
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool prev_match = false;
      for (const auto& s : segs) {
        if (s.match && !prev_match && !merged.empty())
          merged.back().e = s.e;
        else
          merged.push_back(s);
        prev_match = s.match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool next_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->match && !next_match && !merged.empty())
          merged.back().b = it->b;
        else
          merged.push_back(*it);
        next_match = it->match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case SplitBehavior::Contiguous: {
      bool prev_match = false;
      for (const auto& s : segs) {
        if (s.match && prev_match)
          merged.back().e = s.e;
        else
          merged.push_back(s);
        prev_match = s.match;
      }
      break;
    }
  }
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (const auto& s : merged)
    if (s.e > s.b) out.emplace_back(text.substr(s.b, s.e - s.b));
  return out;
}

std::vector<PreToken> PreTokenizer::apply(PreToken input) const {
  std::vector<PreToken> pieces;
  pieces.push_back(std::move(input));
  for (const auto& step : steps_) {
    std::vector<PreToken> next;
    for (auto& piece : pieces) {
      const bool at_start = piece.at_start;
      auto emit = [&](std::vector<std::string> parts) {
        for (size_t i = 0; i < parts.size(); ++i)
          next.push_back({std::move(parts[i]), at_start && i == 0});
      };
      switch (step.kind) {
        case PreTokenizerStep::Kind::Split:
          emit(split_text(piece.text, step.pattern->find_all(piece.text), step.behavior,
                          step.invert));
          break;
        case PreTokenizerStep::Kind::ByteLevel: {
          std::string text = std::move(piece.text);
          if (step.add_prefix_space && !text.empty() && text[0] != ' ')
            text.insert(text.begin(), ' ');
          std::vector<std::string> parts;
          if (step.pattern)
            parts = split_text(text, step.pattern->find_all(text), SplitBehavior::Isolated, false);
          else if (!text.empty())
            parts.push_back(std::move(text));
          for (auto& p : parts) p = byte_level::encode(p);
          emit(std::move(parts));
          break;
        }
        case PreTokenizerStep::Kind::Metaspace: {
          std::string text;
          text.reserve(piece.text.size() + 3);
          for (char c : piece.text) {
            if (c == ' ')
              text += step.replacement;
            else
              text += c;
          }
          using P = PreTokenizerStep::Prepend;
          const bool want_prefix =
              step.prepend == P::Always || (step.prepend == P::First && at_start);
          if (want_prefix && !text.empty() && !text.starts_with(step.replacement))
            text.insert(0, step.replacement);
          if (step.split) {
            std::vector<std::pair<size_t, size_t>> matches;
            for (size_t pos = text.find(step.replacement); pos != std::string::npos;
                 pos = text.find(step.replacement, pos + step.replacement.size()))
              matches.emplace_back(pos, pos + step.replacement.size());
            emit(split_text(text, matches, SplitBehavior::MergedWithNext, false));
          } else if (!text.empty()) {
            emit({std::move(text)});
          }
          break;
        }
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace nucleus
