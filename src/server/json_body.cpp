#include "server/json_body.h"

#include "server/api_error.h"

namespace nucleus::server {

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      cp = b & 0x07;
    } else {
      return false;  // continuation byte, C0/C1 overlong lead, or beyond U+10FFFF
    }
    if (i + static_cast<size_t>(len) > n) return false;
    for (int k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

int json_depth(std::string_view s) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

nlohmann::json parse_json_body(std::string_view body, const BodyLimits& limits) {
  if (body.size() > limits.max_bytes)
    throw ApiError(413,
                   "request body of " + std::to_string(body.size()) +
                       " bytes exceeds the limit of " + std::to_string(limits.max_bytes) + " bytes",
                   "", "body_too_large");
  if (!is_valid_utf8(body))
    throw ApiError(400, "request body is not valid UTF-8", "", "invalid_utf8");
  if (json_depth(body) > limits.max_depth)
    throw ApiError(
        400, "request JSON is nested deeper than " + std::to_string(limits.max_depth) + " levels",
        "", "json_too_deep");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    // Not only parse_error: a number beyond double's range (1e400) is an
    // out_of_range (406). e.what() is "[json.exception.parse_error.101] parse
    // error at line 1, ...".
    std::string msg = e.what();
    const size_t at = msg.find("] ");
    if (at != std::string::npos) msg = msg.substr(at + 2);
    throw ApiError(400, "request body is not valid JSON: " + msg, "", "invalid_json");
  }
  if (!j.is_object())
    throw ApiError(400, "request body must be a JSON object, got " + short_dump(j), "",
                   "invalid_json");
  return j;
}

std::string short_dump(const nlohmann::json& v) {
  std::string d = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (d.size() > 60) {
    size_t cut = 57;
    // Never cut a UTF-8 character in two.
    while (cut > 0 && (static_cast<unsigned char>(d[cut]) & 0xC0) == 0x80) --cut;
    d = d.substr(0, cut) + "...";
  }
  return d;
}

}  // namespace nucleus::server
