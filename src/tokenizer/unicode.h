#pragma once
// UTF-8 helpers and Unicode NFC normalization for the tokenizers.
#include <cstddef>
#include <string>
#include <string_view>

#include "util/utf8.h"

namespace nucleus::unicode {

// Decodes the UTF-8 character starting at s[pos]. Returns its code point and
// sets `len` to the bytes it occupies; an invalid or truncated sequence
// yields U+FFFD with len = 1, so callers always make progress.
char32_t decode_utf8(std::string_view s, size_t pos, size_t& len);

// Length of the UTF-8 character starting at s[pos] (1 for an invalid byte).
size_t utf8_char_len(std::string_view s, size_t pos);

using ::nucleus::append_utf8;
std::string to_utf8(char32_t cp);

bool is_valid_utf8(std::string_view s);

// Canonical composition (Unicode Normalization Form C). Bytes that are not
// valid UTF-8 are passed through unchanged and act as starters.
std::string nfc(std::string_view s);

}  // namespace nucleus::unicode
