#pragma once
// Splits template source into text and tag segments, applying Jinja's
// whitespace control ({%- -%}, trim_blocks, lstrip_blocks) while scanning, and
// tokenizes the inside of {{ }} and {% %} tags.
#include <cstdint>
#include <string>
#include <vector>

namespace nucleus::jinja {

struct Options {
  // Drop the first newline after a block or comment tag.
  bool trim_blocks = false;
  // Strip spaces and tabs from the start of a line up to a block or comment tag.
  bool lstrip_blocks = false;
  // Keep a single trailing newline of the template (Jinja drops it by default).
  bool keep_trailing_newline = false;
  // Bound on loop iterations (all loops of one render together), so that a
  // hostile template cannot spin for hours. Real templates walk the messages
  // and tools a few times; 10^6 covers a 10^5-message conversation and costs
  // under a second of interpreter time.
  int64_t max_loop_iterations = 1'000'000;
};

enum class TokenType { Name, String, Int, Float, Op };

struct Token {
  TokenType type;
  std::string text;  // name, operator, or decoded string value
  int64_t int_value = 0;
  double float_value = 0.0;
  int line = 0;
};

enum class SegmentType { Text, Output, Statement };

struct Segment {
  SegmentType type;
  std::string text;           // Text only
  std::vector<Token> tokens;  // Output ({{ }}) and Statement ({% %})
  int line = 0;
};

// Throws Error naming the line for unterminated tags, comments and strings and
// for characters that are not part of the expression language.
std::vector<Segment> lex(const std::string& source, const Options& options);

}  // namespace nucleus::jinja
