#include "jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "util/error.h"
#include "util/utf8.h"

namespace nucleus::jinja {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

[[noreturn]] void fail(int line, const std::string& msg) {
  throw Error("jinja: line " + std::to_string(line) + ": " + msg);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Jinja decodes string literals with Python's "unicode-escape" codec; unknown
// escapes keep their backslash.
std::string unescape(const std::string& raw, int line) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 >= raw.size()) {
      out += c;
      continue;
    }
    char e = raw[++i];
    switch (e) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      case '\n':
        break;  // backslash-newline continues the line
      case 'x':
      case 'u':
      case 'U': {
        size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t k = 0; k < n; ++k) {
          int h = i + 1 + k < raw.size() ? hex_value(raw[i + 1 + k]) : -1;
          if (h < 0) fail(line, std::string("truncated \\") + e + " escape in string literal");
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        if (cp > 0x10FFFF) fail(line, "escape in string literal is beyond U+10FFFF");
        i += n;
        append_utf8(out, cp);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7';
               ++k)
            cp = cp * 8 + static_cast<uint32_t>(raw[++i] - '0');
          append_utf8(out, cp);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(std::string src, const Options& o) : src_(std::move(src)), opt_(o) {
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') newlines_.push_back(i);
  }

  std::vector<Segment> run() {
    size_t pos = 0;
    bool line_starting = true;  // the text about to be scanned begins a line
    while (pos < src_.size()) {
      size_t start = find_tag(pos);
      std::string text = src_.substr(pos, start - pos);
      if (start == src_.size()) {
        push_text(std::move(text), pos);
        break;
      }
      char kind = src_[start + 1];
      char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (sign == '-') {
        size_t keep = text.size();
        while (keep > 0 && is_space(text[keep - 1])) --keep;
        text.resize(keep);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        // Only when nothing but blanks stand between the line start and the tag.
        size_t nl = text.rfind('\n');
        size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool blank =
              std::all_of(text.begin() + static_cast<std::ptrdiff_t>(l_pos), text.end(), is_space);
          if (blank) text.resize(l_pos);
        }
      }
      push_text(std::move(text), pos);
      size_t body = start + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment(start, body);
      } else if (kind == '%' && is_raw(body)) {
        pos = lex_raw(start, body);
      } else {
        pos = lex_tag(start, body, kind);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    return std::move(segs_);
  }

 private:
  int line_at(size_t pos) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) -
                                newlines_.begin());
  }

  size_t find_tag(size_t pos) const {
    for (size_t i = pos; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return src_.size();
  }

  void push_text(std::string text, size_t pos) {
    if (text.empty()) return;
    Segment s{SegmentType::Text, std::move(text), {}, line_at(pos)};
    segs_.push_back(std::move(s));
  }

  // After a closing delimiter ending at `pos`: `-` strips all following
  // whitespace, trim_blocks drops one newline after block/comment tags, `+`
  // keeps everything.
  size_t after_close(size_t pos, char sign, bool block_like) const {
    if (sign == '-') {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
    } else if (sign != '+' && block_like && opt_.trim_blocks && pos < src_.size() &&
               src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  size_t lex_comment(size_t start, size_t body) {
    size_t end = src_.find("#}", body);
    if (end == std::string::npos) fail(line_at(start), "unterminated comment '{#'");
    char sign =
        (end > body && (src_[end - 1] == '-' || src_[end - 1] == '+')) ? src_[end - 1] : '\0';
    return after_close(end + 2, sign, true);
  }

  bool is_raw(size_t body) const {
    size_t p = body;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < src_.size() && is_name_char(src_[p])) return false;
    return true;
  }

  // Matches `{%[-+]? endraw [-+]?%}` at pos; returns the end position or npos.
  size_t match_endraw(size_t pos, char& open_sign, char& close_sign) const {
    if (src_.compare(pos, 2, "{%") != 0) return std::string::npos;
    size_t p = pos + 2;
    open_sign = (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ? src_[p++] : '\0';
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 6, "endraw") != 0) return std::string::npos;
    p += 6;
    while (p < src_.size() && is_space(src_[p])) ++p;
    close_sign = (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ? src_[p++] : '\0';
    if (src_.compare(p, 2, "%}") != 0) return std::string::npos;
    return p + 2;
  }

  size_t lex_raw(size_t start, size_t body) {
    size_t p = body;
    while (p < src_.size() && is_space(src_[p])) ++p;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    char sign = (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ? src_[p++] : '\0';
    if (src_.compare(p, 2, "%}") != 0) fail(line_at(start), "expected '%}' after 'raw'");
    size_t content = after_close(p + 2, sign, true);
    for (size_t i = content; i < src_.size(); ++i) {
      char os = '\0', cs = '\0';
      size_t end = match_endraw(i, os, cs);
      if (end == std::string::npos) continue;
      std::string text = src_.substr(content, i - content);
      if (os == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      }
      push_text(std::move(text), content);
      return after_close(end, cs, true);
    }
    fail(line_at(start), "unterminated '{% raw %}' block (missing '{% endraw %}')");
  }

  size_t lex_tag(size_t start, size_t p, char kind) {
    const int open_line = line_at(start);
    const char close = kind == '{' ? '}' : '%';
    Segment seg{kind == '{' ? SegmentType::Output : SegmentType::Statement, "", {}, open_line};
    int depth = 0;  // open brackets: a closing delimiter inside them is an operator
    int line = open_line;
    const char* what = kind == '{' ? "'{{' expression" : "'{%' statement";
    while (true) {
      while (p < src_.size() && is_space(src_[p])) {
        if (src_[p] == '\n') ++line;
        ++p;
      }
      if (p >= src_.size())
        fail(open_line, std::string("unterminated ") + what + " (missing '" + close + "}')");
      if (depth == 0) {
        char sign = (src_[p] == '-' || src_[p] == '+') ? src_[p] : '\0';
        size_t q = p + (sign ? 1 : 0);
        if (q + 1 < src_.size() && src_[q] == close && src_[q + 1] == '}') {
          segs_.push_back(std::move(seg));
          return after_close(q + 2, sign, kind == '%');
        }
      }
      char c = src_[p];
      Token t{TokenType::Op, "", 0, 0.0, line};
      if (is_name_start(c)) {
        size_t b = p;
        while (p < src_.size() && is_name_char(src_[p])) ++p;
        t.type = TokenType::Name;
        t.text = src_.substr(b, p - b);
      } else if (is_digit(c)) {
        p = lex_number(p, t,
                       !seg.tokens.empty() && seg.tokens.back().type == TokenType::Op &&
                           seg.tokens.back().text == ".");
      } else if (c == '\'' || c == '"') {
        size_t b = ++p;
        while (p < src_.size() && src_[p] != c) {
          if (src_[p] == '\\') ++p;
          ++p;
        }
        if (p >= src_.size()) fail(line, "unterminated string literal");
        std::string raw = src_.substr(b, p - b);
        ++p;
        t.type = TokenType::String;
        t.text = unescape(raw, line);
        line += static_cast<int>(std::count(raw.begin(), raw.end(), '\n'));
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                           "/",  "%",  "~",  "<",  ">",  "=",  ".", ",", ":",
                                           "|",  "(",  ")",  "[",  "]",  "{",  "}"};
        bool found = false;
        for (const char* op : kOps) {
          size_t n = std::char_traits<char>::length(op);
          if (src_.compare(p, n, op) == 0) {
            t.text = op;
            p += n;
            found = true;
            break;
          }
        }
        if (!found) {
          std::string shown =
              (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                  ? "\\x" + std::to_string(static_cast<unsigned char>(c))
                  : std::string(1, c);
          fail(line, "unexpected character '" + shown + "' in " + what);
        }
        if (t.text == "(" || t.text == "[" || t.text == "{") ++depth;
        if ((t.text == ")" || t.text == "]" || t.text == "}") && depth > 0) --depth;
      }
      seg.tokens.push_back(std::move(t));
    }
  }

  // Integer or float literal; `after_dot` (as in `x.0`) reads an integer only.
  size_t lex_number(size_t p, Token& t, bool after_dot) const {
    auto digits = [&](size_t q) {
      while (q < src_.size() && (is_digit(src_[q]) ||
                                 (src_[q] == '_' && q + 1 < src_.size() && is_digit(src_[q + 1]))))
        ++q;
      return q;
    };
    size_t b = p;
    p = digits(p);
    bool is_float = false;
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      p = digits(p + 1);
      is_float = true;
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        p = digits(q);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = b; i < p; ++i)
      if (src_[i] != '_') text += src_[i];
    t.text = text;
    if (is_float) {
      t.type = TokenType::Float;
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      t.type = TokenType::Int;
      try {
        t.int_value = std::stoll(text);
      } catch (const std::out_of_range&) {
        fail(t.line, "integer literal " + text + " is out of range");
      }
    }
    return p;
  }

  std::string src_;
  Options opt_;
  std::vector<Segment> segs_;
  std::vector<size_t> newlines_;  // positions of '\n', for line numbers
};

}  // namespace

std::vector<Segment> lex(const std::string& source, const Options& options) {
  // Jinja normalises every newline to "\n" and drops one trailing newline.
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  if (!options.keep_trailing_newline && !src.empty() && src.back() == '\n') src.pop_back();
  return Lexer(std::move(src), options).run();
}

}  // namespace nucleus::jinja
