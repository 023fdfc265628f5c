#pragma once
// Request bodies before they become JSON: size, UTF-8 and nesting are
// checked on the raw bytes first, so a hostile body is refused cheaply and
// with a precise message instead of deep recursion or a parser's generic error.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace nucleus::server {

struct BodyLimits {
  size_t max_bytes = 4u << 20;  // 413 beyond
  int max_depth = 32;           // arrays/objects inside each other
};

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points
// beyond U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Deepest nesting of arrays/objects outside strings (a pre-scan: it does not
// validate the syntax).
int json_depth(std::string_view s);

// Parses a request body that must be a JSON object. Throws ApiError: 413 over
// max_bytes, 400 for non-UTF-8 bytes, nesting beyond max_depth, a syntax
// error or a non-object.
nlohmann::json parse_json_body(std::string_view body, const BodyLimits& limits);

// A value shown in an error message: compact, valid UTF-8, at most ~60 bytes.
std::string short_dump(const nlohmann::json& v);

}  // namespace nucleus::server
