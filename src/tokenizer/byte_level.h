#pragma once
// GPT-2's byte-level alphabet: every byte value is written as one printable
// Unicode character, so byte-level BPE vocabularies are ordinary strings.
// Printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for
// themselves; the other 68 bytes, in increasing order, take U+0100, U+0101, ...
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nucleus::byte_level {

char32_t byte_to_char(uint8_t b);
// The byte a character stands for, or nothing if it is not in the alphabet.
std::optional<uint8_t> char_to_byte(char32_t c);

// Rewrites raw bytes into the alphabet (UTF-8 encoded).
std::string encode(std::string_view bytes);
// Reverses encode(); returns nothing if any character is outside the alphabet.
std::optional<std::string> decode(std::string_view text);

}  // namespace nucleus::byte_level
