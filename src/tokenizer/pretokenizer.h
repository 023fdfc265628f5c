#pragma once
// The text-splitting stages of a Hugging Face style tokenizer pipeline:
// regular expressions (PCRE2), normalizers and pre-tokenizers.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nucleus {

// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available).
// Invalid UTF-8 in the subject never matches and never fails the search.
class Regex {
 public:
  // `literal` treats the pattern as a plain string. `where` names the source
  // of the pattern for error messages.
  Regex(const std::string& pattern, bool literal, const std::string& where);
  // Non-empty, non-overlapping matches, left to right, as [begin, end).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  std::string replace_all(std::string_view text, std::string_view replacement) const;

 private:
  std::shared_ptr<void> code_;  // pcre2_code_8, freed by its deleter; null for a literal
  // The same pattern without PCRE2_MATCH_INVALID_UTF, for subjects already
  // known to be valid: with that option PCRE2 re-checks the UTF-8 from the
  // start offset to the end on every match call (quadratic without the JIT).
  std::shared_ptr<void> code_valid_;
  std::string literal_;  // plain strings are searched without PCRE2 (hot in decoding)
};

// The pre-tokenizer regexes of well-known byte-level BPE vocabularies.
namespace regex_patterns {
extern const char* const kGpt2;
extern const char* const kLlama3;
extern const char* const kQwen2;
}  // namespace regex_patterns

struct NormalizerStep {
  enum class Kind { Prepend, Replace, Nfc };
  Kind kind;
  std::string text;                // Prepend: prefix; Replace: replacement
  std::shared_ptr<Regex> pattern;  // Replace
};

class Normalizer {
 public:
  void add(NormalizerStep step) { steps_.push_back(std::move(step)); }
  bool empty() const { return steps_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  std::vector<NormalizerStep> steps_;
};

// How a Split pre-tokenizer treats the matched delimiters.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// A piece of text on its way to the model. `at_start` marks the piece that
// begins the original input (the Metaspace "first" prepend scheme needs it).
struct PreToken {
  std::string text;
  bool at_start = false;
};

struct PreTokenizerStep {
  enum class Kind { Split, ByteLevel, Metaspace };
  Kind kind;
  std::shared_ptr<Regex> pattern;  // Split; ByteLevel with use_regex
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  std::string replacement;        // Metaspace (UTF-8 of one character)
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;  // Metaspace
  bool split = true;                                                      // Metaspace
};

class PreTokenizer {
 public:
  void add(PreTokenizerStep step) { steps_.push_back(std::move(step)); }
  std::vector<PreToken> apply(PreToken input) const;

 private:
  std::vector<PreTokenizerStep> steps_;
};

// Splits text at `matches` (sorted, non-overlapping) according to behavior;
// drops empty pieces.
std::vector<std::string> split_text(std::string_view text,
                                    const std::vector<std::pair<size_t, size_t>>& matches,
                                    SplitBehavior behavior, bool invert);

}  // namespace nucleus
