#pragma once
#include <vector>

#include "jinja/ast.h"
#include "jinja/lexer.h"

namespace nucleus::jinja {

// Nesting bounds that keep hostile templates from exhausting the stack:
// recursion of the parser (parentheses, `not`, unary signs, nested blocks) and
// height of any expression tree (long `a + b + c ...` chains).
inline constexpr int kMaxParseNesting = 128;
inline constexpr int kMaxExprDepth = 256;

// Builds the statement tree; throws Error naming the line and construct for
// syntax errors, unknown or unsupported statements and unclosed blocks.
Body parse(std::vector<Segment> segments);

}  // namespace nucleus::jinja
