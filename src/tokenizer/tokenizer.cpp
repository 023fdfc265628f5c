#include "tokenizer/tokenizer.h"

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "util/error.h"

namespace nucleus {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Scans one UTF-8 character at s[i]. Returns its length when complete and
// valid; 0 when s ends inside a character that is valid so far; and -k when
// the k bytes at i are an invalid sequence (a maximal subpart of a valid one,
// replaced by a single U+FFFD as the Unicode standard recommends).
int scan_utf8(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  int len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // beyond U+10FFFF
  } else {
    return -1;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return 0;
    const auto b = static_cast<unsigned char>(s[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return -k;
  }
  return len;
}

// Appends the valid text of s to out, invalid sequences as U+FFFD. Returns how
// many bytes were consumed: all of s, or (when !final) up to an incomplete
// character at its end, which is left for later.
size_t append_valid(std::string_view s, bool final, std::string& out) {
  size_t i = 0;
  while (i < s.size()) {
    const int r = scan_utf8(s, i);
    if (r > 0) {
      out.append(s.substr(i, r));
      i += r;
    } else if (r < 0) {
      out += kReplacement;
      i += static_cast<size_t>(-r);
    } else if (!final) {
      return i;
    } else {
      out += kReplacement;  // a truncated character at the very end
      return s.size();
    }
  }
  return i;
}

}  // namespace

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    out += token_bytes(id, prev);
    prev = id;
  }
  return out;
}

std::string valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_valid(bytes, true, out);
  return out;
}

std::unique_ptr<Tokenizer> make_tokenizer(const Vocab& vocab) {
  if (vocab.model == "llama") return std::make_unique<SpmTokenizer>(vocab);
  if (vocab.model == "gpt2") return make_bpe_tokenizer_from_vocab(vocab);
  std::string msg = "tokenizer: unsupported tokenizer model '";
  msg += vocab.model;
  msg += "' (tokenizer.ggml.model)";
  throw Error(msg);
}

std::string StreamingDetokenizer::push(int32_t id) {
  pending_ += tok_.token_bytes(id, prev_);
  prev_ = id;
  std::string out;
  pending_.erase(0, append_valid(pending_, false, out));
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  append_valid(pending_, true, out);
  pending_.clear();
  return out;
}

}  // namespace nucleus
