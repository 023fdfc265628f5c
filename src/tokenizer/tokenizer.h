#pragma once
// Text <-> token ids. Concrete tokenizers (SentencePiece-style BPE, byte-level
// BPE from tokenizer.json, ...) implement this interface; the rest of the
// engine sees only it.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace nucleus {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes text; prepends BOS when add_bos is true and the vocabulary has one.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  // Like encode, but text spelling a special token (control, e.g. "<s>" or
  // "<|user|>") becomes that token, as llama.cpp does with parse_special:
  // for prompts rendered from chat templates. Tokenizers that do not
  // override it treat such text as plain text.
  virtual std::vector<int32_t> encode_with_specials(std::string_view text, bool add_bos) const {
    return encode(text, add_bos);
  }
  // The bytes a token contributes to decoded text when it follows `prev`
  // (SentencePiece drops the leading space of the first piece after BOS).
  // Control tokens such as BOS/EOS contribute nothing. Throws Error for an id
  // out of range.
  virtual std::string token_bytes(int32_t id, int32_t prev) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual bool add_bos_default() const = 0;

  // Whole-sequence decode: concatenated token_bytes (may hold partial UTF-8
  // only if the ids do).
  std::string decode(const std::vector<int32_t>& ids) const;
};

// `bytes` with every invalid or truncated UTF-8 sequence replaced by U+FFFD
// (one per maximal invalid subpart, as the Unicode standard recommends).
std::string valid_utf8(std::string_view bytes);

// Builds the tokenizer a model file's vocabulary describes; throws Error for
// an unsupported tokenizer model.
std::unique_ptr<Tokenizer> make_tokenizer(const Vocab& vocab);

// Turns a stream of ids into text without ever splitting a UTF-8 character
// across two outputs: bytes of an incomplete character are held back until
// the character is complete (or flushed, as U+FFFD, at the end). Bytes that
// cannot be part of a valid character become U+FFFD as soon as that is known,
// so every push() output is valid UTF-8.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tok, int32_t prev = -1) : tok_(tok), prev_(prev) {}
  // Returns the text that became complete with this token (possibly empty).
  std::string push(int32_t id);
  // Returns whatever is still held back (invalid bytes replaced by U+FFFD)
  // and empties the buffer. The concatenated outputs of push() and flush()
  // equal valid_utf8(decode(ids)) when prev is -1.
  std::string flush();

 private:
  const Tokenizer& tok_;
  int32_t prev_;
  std::string pending_;
};

}  // namespace nucleus
