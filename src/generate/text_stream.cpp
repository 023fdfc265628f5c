#include "generate/text_stream.h"

#include <algorithm>

namespace nucleus {

namespace {
// A stand-in when there is no tokenizer: no text at all.
class NullTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view, bool) const override { return {}; }
  std::string token_bytes(int32_t, int32_t) const override { return {}; }
  int64_t vocab_size() const override { return 0; }
  int32_t bos_id() const override { return -1; }
  int32_t eos_id() const override { return -1; }
  bool add_bos_default() const override { return false; }
};
const NullTokenizer kNullTokenizer;
}  // namespace

TextStream::TextStream(const Tokenizer* tokenizer, int32_t prev_token,
                       std::vector<std::string> stops)
    : tokenizer_(tokenizer),
      detok_(tokenizer ? *tokenizer : kNullTokenizer, prev_token),
      stops_(std::move(stops)) {}

std::string TextStream::release(size_t upto) {
  std::string out = pending_.substr(0, upto);
  pending_.erase(0, upto);
  text_ += out;
  return out;
}

std::string TextStream::push(int32_t token) {
  if (stopped_ || tokenizer_ == nullptr) return {};
  pending_ += detok_.push(token);
  if (stops_.empty()) return release(pending_.size());
  // A stop string may straddle tokens, so search the held-back text (which
  // always starts where a stop string could start).
  size_t first = std::string::npos;
  for (const std::string& s : stops_) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = release(first);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  return release(pending_.size() - hold);
}

std::string TextStream::finish() {
  if (stopped_ || tokenizer_ == nullptr) return {};
  pending_ += detok_.flush();
  return release(pending_.size());
}

}  // namespace nucleus
