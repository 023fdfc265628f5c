// Tokenizer surfaces: tokenizer.json itself, and arbitrary text / ids against
// the real vocabularies shipped in tests/data.
#include <cstring>
#include <memory>

#include "formats/gguf.h"
#include "fuzz/targets.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#ifndef NUCLEUS_TEST_DATA
#error "NUCLEUS_TEST_DATA must name tests/data"
#endif

namespace nucleus::fuzz {

namespace {

// The vocabularies of encode/detokenize, chosen by the input's first byte:
// Llama 3 and Qwen3 (byte-level BPE, tokenizer.json), Llama 2 as HF ships it
// (tokenizer.json) and as llama.cpp does (SentencePiece GGUF).
constexpr int kVocabs = 4;

const Tokenizer& vocab(int which) {
  static std::unique_ptr<Tokenizer> cache[kVocabs];
  const std::string data = NUCLEUS_TEST_DATA;
  std::unique_ptr<Tokenizer>& t = cache[which];
  if (!t) {
    switch (which) {
      case 0:
        t = load_hf_tokenizer(data + "/bpe/llama3");
        break;
      case 1:
        t = load_hf_tokenizer(data + "/bpe/qwen3");
        break;
      case 2:
        t = load_hf_tokenizer(data + "/bpe/llama2");
        break;
      default:
        t = make_tokenizer(read_gguf_vocab(data + "/tokenizer/ggml-vocab-llama-spm.gguf"));
        break;
    }
  }
  return *t;
}

// Streams ids through the detokenizer, checking its two promises: every
// push() is valid UTF-8, and the outputs together are valid_utf8(decode(ids)).
void stream_and_check(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  StreamingDetokenizer d(tok);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = d.push(id);
    if (valid_utf8(piece) != piece) invariant_failed("push() returned invalid UTF-8");
    streamed += piece;
  }
  streamed += d.flush();
  if (streamed != valid_utf8(tok.decode(ids)))
    invariant_failed("streamed text differs from valid_utf8(decode(ids))");
}

}  // namespace

void warm_up(std::string_view target) {
  if (target == "encode" || target == "detokenize")
    for (int v = 0; v < kVocabs; ++v) (void)vocab(v);
}

void tokenizer_json(Input in) {
  const std::vector<std::string> parts = split_parts(in, 2);
  try {
    auto tok = parse_hf_tokenizer(parts[0], "", "fuzz-tokenizer.json");
    const std::vector<int32_t> ids = tok->encode(parts[1], true);
    (void)tok->encode_with_specials(parts[1], false);
    for (int32_t id : ids)
      if (id < 0 || id >= tok->vocab_size()) invariant_failed("encode returned an id out of range");
    (void)tok->decode(ids);
    stream_and_check(*tok, ids);
  } catch (const Error&) {
  }
}

void encode(Input in) {
  if (in.empty()) return;
  const Tokenizer& tok = vocab(in[0] % kVocabs);
  const std::string_view text(reinterpret_cast<const char*>(in.data() + 1), in.size() - 1);
  try {
    for (const std::vector<int32_t>& ids :
         {tok.encode(text, true), tok.encode_with_specials(text, false)}) {
      for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size())
          invariant_failed("encode returned an id out of range");
      stream_and_check(tok, ids);
    }
  } catch (const Error&) {
  }
}

void detokenize(Input in) {
  if (in.empty()) return;
  const Tokenizer& tok = vocab(in[0] % kVocabs);
  // Ids are 3 bytes each, mostly in range (ids out of range must throw).
  std::vector<int32_t> ids;
  for (size_t i = 1; i + 3 <= in.size(); i += 3) {
    const int32_t raw = in[i] | (in[i + 1] << 8) | ((in[i + 2] & 0x7f) << 16);
    ids.push_back((in[i + 2] & 0x80) ? -raw : static_cast<int32_t>(raw % (tok.vocab_size() + 16)));
  }
  try {
    stream_and_check(tok, ids);
  } catch (const Error&) {
  }
}

}  // namespace nucleus::fuzz
