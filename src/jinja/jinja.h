#pragma once
// A Jinja2 subset interpreter, sized for Hugging Face chat templates.
//
// Supported: {{ }}, {% %}, {# #}, {% raw %}; whitespace control `-`/`+` on
// both sides, trim_blocks, lstrip_blocks; if/elif/else, for (tuple unpacking,
// inline `if` filter, else, loop.index/index0/revindex/revindex0/first/last/
// length/previtem/nextitem/cycle), break/continue, set (tuples, namespace
// attributes, block set), macros (positional/keyword arguments, defaults),
// transformers' {% generation %} block. Expressions: literals, lists, dicts,
// attribute/subscript/slice access, calls, filters, tests, arithmetic, `~`,
// comparisons (chained), in / not in, and / or / not, `a if b else c`.
// Everything else (include, extends, call blocks, *args, string %-formatting,
// unknown filters/tests/methods) is refused with a nucleus::Error that names
// the construct and its line. Undefined variables behave like Jinja's default
// Undefined: falsy, print as "", iterate as empty, fail on attribute access.
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "jinja/lexer.h"
#include "jinja/value.h"

namespace nucleus::jinja {

struct Stmt;

// Limits that keep hostile templates bounded in time, memory and stack.
inline constexpr int kMaxCallDepth = 64;                     // nested macro calls
inline constexpr size_t kMaxOutputBytes = size_t{16} << 20;  // rendered text
inline constexpr int64_t kMaxRangeLength = 1'000'000;        // range() result

class Template {
 public:
  // Parses the source; throws Error for syntax errors and unsupported statements.
  explicit Template(const std::string& source, const Options& options = {});

  // Renders with `vars` as globals. Built-in globals: range, namespace, dict,
  // raise_exception (throws Error carrying its message). Throws Error for
  // run-time errors (undefined attribute access, type errors, limits).
  std::string render(const std::map<std::string, Value>& vars) const;
  // Same with the globals given as a JSON object.
  std::string render(const nlohmann::ordered_json& vars) const;

 private:
  std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body_;
  Options options_;
};

}  // namespace nucleus::jinja
