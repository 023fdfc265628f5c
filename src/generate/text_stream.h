#pragma once
// Per-sequence output text: streaming detokenization plus stop-string
// matching. Text that might still turn into a stop string is held back until
// it cannot; a found stop string ends the sequence and is never emitted.
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace nucleus {

class TextStream {
 public:
  TextStream(const Tokenizer* tokenizer, int32_t prev_token, std::vector<std::string> stops);
  // Adds a token; returns text now final. Sets stopped() when a stop string appeared.
  std::string push(int32_t token);
  // Returns the rest at the end of generation (nothing after a stop string).
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::string& text() const { return text_; }  // everything emitted so far

 private:
  std::string release(size_t upto);

  const Tokenizer* tokenizer_;
  StreamingDetokenizer detok_;
  std::vector<std::string> stops_;
  std::string pending_;  // complete characters not yet emitted
  std::string text_;
  bool stopped_ = false;
};

}  // namespace nucleus
