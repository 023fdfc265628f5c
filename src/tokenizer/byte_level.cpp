#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/unicode.h"

namespace nucleus::byte_level {

namespace {

constexpr bool stands_for_itself(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_char{};
  // Characters of the alphabet are all below U+0144 (0x100 + 68).
  std::array<int16_t, 0x144> to_byte{};
  std::array<std::string, 256> utf8;
  Tables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
      const char32_t c = stands_for_itself(b) ? b : next++;
      to_char[b] = c;
      to_byte[c] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t = [] {
    Tables x;
    for (unsigned b = 0; b < 256; ++b) x.utf8[b] = unicode::to_utf8(x.to_char[b]);
    return x;
  }();
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) {
  return tables().to_char[b];
}

std::optional<uint8_t> char_to_byte(char32_t c) {
  if (c >= tables().to_byte.size()) return std::nullopt;
  const int16_t b = tables().to_byte[c];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) out += t.utf8[static_cast<uint8_t>(ch)];
  return out;
}

std::optional<std::string> decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len;
    const char32_t c = unicode::decode_utf8(text, i, len);
    const auto b = char_to_byte(c);
    if (!b || (c == 0xFFFD && len == 1)) return std::nullopt;
    out += static_cast<char>(*b);
    i += len;
  }
  return out;
}

}  // namespace nucleus::byte_level
