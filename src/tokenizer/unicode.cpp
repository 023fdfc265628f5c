#include "tokenizer/unicode.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace nucleus::unicode {

namespace {

struct CccEntry {
  char32_t cp;
  uint8_t ccc;
};
struct DecompEntry {
  char32_t cp;
  uint16_t offset;
  uint8_t length;
};
struct ComposeEntry {
  char32_t first;
  char32_t second;
  char32_t composite;
};

#include "tokenizer/unicode_tables.inc"

// Hangul syllables are composed/decomposed arithmetically (Unicode ch. 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::lower_bound(std::begin(kCombiningClass), std::end(kCombiningClass), cp,
                             [](const CccEntry& e, char32_t c) { return e.cp < c; });
  return (it != std::end(kCombiningClass) && it->cp == cp) ? it->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    auto it = std::lower_bound(std::begin(kDecompIndex), std::end(kDecompIndex), cp,
                               [](const DecompEntry& e, char32_t c) { return e.cp < c; });
    if (it != std::end(kDecompIndex) && it->cp == cp) {
      out.insert(out.end(), kDecompData + it->offset, kDecompData + it->offset + it->length);
      return;
    }
  }
  out.push_back(cp);
}

// Returns the primary composite of (a, b) or 0 when there is none.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it =
      std::lower_bound(std::begin(kCompose), std::end(kCompose), std::pair{a, b},
                       [](const ComposeEntry& e, const std::pair<char32_t, char32_t>& k) {
                         return e.first < k.first || (e.first == k.first && e.second < k.second);
                       });
  if (it != std::end(kCompose) && it->first == a && it->second == b) return it->composite;
  return 0;
}

// Invalid bytes travel through normalization as values above the code point
// range so they come back out as the same bytes.
constexpr char32_t kRawByteBase = 0x200000;

}  // namespace

char32_t decode_utf8(std::string_view s, size_t pos, size_t& len) {
  len = 1;
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) return b0;
  size_t n;
  char32_t cp;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0xFFFD;
  }
  if (pos + n > s.size()) return 0xFFFD;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0xFFFD;
  len = n;
  return cp;
}

size_t utf8_char_len(std::string_view s, size_t pos) {
  size_t len;
  decode_utf8(s, pos, len);
  return len;
}

std::string to_utf8(char32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t len;
    const char32_t cp = decode_utf8(s, i, len);
    if (cp == 0xFFFD && len == 1 && static_cast<uint8_t>(s[i]) >= 0x80) return false;
    i += len;
  }
  return true;
}

std::string nfc(std::string_view s) {
  // ASCII is always in NFC; most text takes this path.
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; }))
    return std::string(s);

  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len;
    char32_t cp = decode_utf8(s, i, len);
    if (cp == 0xFFFD && len == 1 && static_cast<uint8_t>(s[i]) >= 0x80) {
      cps.push_back(kRawByteBase + static_cast<uint8_t>(s[i]));
    } else {
      decompose(cp, cps);
    }
    i += len;
  }
  auto ccc = [](char32_t cp) -> uint8_t { return cp >= kRawByteBase ? 0 : combining_class(cp); };

  // Canonical ordering: stable sort of each run of non-starters by class.
  for (size_t i = 0; i < cps.size();) {
    if (ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i),
                     cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [&](char32_t a, char32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }

  // Canonical composition: a character joins the last starter unless a
  // character between them blocks it (same or higher class, or a starter).
  std::vector<char32_t> out;
  out.reserve(cps.size());
  ptrdiff_t starter = -1;
  int last_ccc = -1;  // class of the last character kept after the starter
  for (char32_t cp : cps) {
    const int c = ccc(cp);
    if (starter >= 0 && cp < kRawByteBase) {
      const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= c);
      if (!blocked) {
        const char32_t comp = compose_pair(out[static_cast<size_t>(starter)], cp);
        if (comp != 0) {
          out[static_cast<size_t>(starter)] = comp;
          continue;
        }
      }
    }
    if (c == 0) {
      starter = static_cast<ptrdiff_t>(out.size());
      last_ccc = -1;
    } else {
      last_ccc = c;
    }
    out.push_back(cp);
  }

  std::string result;
  result.reserve(s.size());
  for (char32_t cp : out) {
    if (cp >= kRawByteBase)
      result += static_cast<char>(cp - kRawByteBase);
    else
      append_utf8(result, cp);
  }
  return result;
}

}  // namespace nucleus::unicode
