// StreamingDetokenizer: never emits part of a UTF-8 character, replaces
// invalid bytes with U+FFFD once they are known to be invalid, and streams the
// same text as a whole decode. Uses the Llama vocabulary (llama.cpp's
// ggml-vocab-llama-spm.gguf), whose byte tokens <0xXX> let ids carry
// arbitrary bytes.
#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/tokenizer/";
const std::string kFFFD = "\xEF\xBF\xBD";

const SpmTokenizer& llama() {
  static const SpmTokenizer tok(
      test::read_gguf_vocab_for_test(kData + "ggml-vocab-llama-spm.gguf"));
  return tok;
}

int32_t byte_id(uint8_t b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string t = "<0x";
  t += kHex[b >> 4];
  t += kHex[b & 15];
  t += '>';
  const int32_t id = llama().find(t);
  EXPECT_GE(id, 0) << t;
  return id;
}

std::vector<int32_t> byte_ids(std::initializer_list<uint8_t> bytes) {
  std::vector<int32_t> ids;
  for (uint8_t b : bytes) ids.push_back(byte_id(b));
  return ids;
}

// Streams ids one at a time; checks every push() output is complete, valid
// UTF-8 (valid_utf8 leaves it unchanged, and it cannot end inside a
// character because a truncated end would be replaced); returns the outputs.
std::vector<std::string> stream(const std::vector<int32_t>& ids, int32_t prev = -1) {
  StreamingDetokenizer d(llama(), prev);
  std::vector<std::string> outs;
  for (int32_t id : ids) {
    outs.push_back(d.push(id));
    EXPECT_EQ(valid_utf8(outs.back()), outs.back()) << "push output is not valid UTF-8";
  }
  outs.push_back(d.flush());
  return outs;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += p;
  return s;
}

TEST(Detokenizer, VectorStringsStreamLikeWholeDecode) {
  const auto cases = test::read_vectors(kData + "ggml-vocab-llama-spm.gguf.inp",
                                        kData + "ggml-vocab-llama-spm.gguf.out");
  ASSERT_EQ(cases.size(), 46u);
  size_t held_back = 0;
  for (const auto& c : cases) {
    // The reference ids (llama.cpp's, no BOS) behind a BOS: the whole decode
    // is the original string, and so is the stream.
    std::vector<int32_t> ids{llama().bos_id()};
    ids.insert(ids.end(), c.ids.begin(), c.ids.end());
    EXPECT_EQ(llama().decode(ids), c.text);
    const auto outs = stream(ids);
    EXPECT_EQ(join(outs), c.text);
    EXPECT_EQ(outs.back(), "");  // nothing left over for valid text
    for (const auto& o : outs) held_back += o.empty();
  }
  // Byte-fallback characters (emoji, Khmer, ...) must have been held back.
  EXPECT_GT(held_back, 46u);
}

TEST(Detokenizer, EmojiThroughByteFallbackIsHeldUntilComplete) {
  // U+1F999 (llama) = F0 9F A6 99 has no piece: 4 byte tokens.
  const auto ids = llama().encode("\xF0\x9F\xA6\x99!", false);
  // "▁" then the four bytes then "!" (the vectors show the same for " 🦙.cpp").
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids[1], byte_id(0xF0));
  const auto outs = stream(ids);
  EXPECT_EQ(outs, (std::vector<std::string>{" ", "", "", "", "\xF0\x9F\xA6\x99", "!", ""}));
}

TEST(Detokenizer, InvalidBytesBecomeReplacementOnceKnown) {
  // A stray continuation byte is invalid at once.
  EXPECT_EQ(stream(byte_ids({0x80, 0x41})), (std::vector<std::string>{kFFFD, "A", ""}));
  // F0 9F is a valid start; "A" ends it, so the two bytes are one maximal
  // invalid subpart -> one U+FFFD, emitted together with the "A".
  EXPECT_EQ(stream(byte_ids({0xF0, 0x9F, 0x41})),
            (std::vector<std::string>{"", "", kFFFD + "A", ""}));
  // C0 can never start a character (overlong), nor can AF on its own.
  EXPECT_EQ(stream(byte_ids({0xC0, 0xAF})), (std::vector<std::string>{kFFFD, kFFFD, ""}));
  // ED A0 80 would encode a surrogate: ED is cut off by A0, then A0 and 80
  // are stray -> three U+FFFD.
  EXPECT_EQ(stream(byte_ids({0xED, 0xA0, 0x80})),
            (std::vector<std::string>{"", kFFFD + kFFFD, kFFFD, ""}));
  // F4 90 would be above U+10FFFF.
  EXPECT_EQ(stream(byte_ids({0xF4, 0x90})), (std::vector<std::string>{"", kFFFD + kFFFD, ""}));
  // E2 82 AC is "€", completed by its last byte.
  EXPECT_EQ(stream(byte_ids({0xE2, 0x82, 0xAC})),
            (std::vector<std::string>{"", "", "\xE2\x82\xAC", ""}));
  // An incomplete character at the end comes out of flush() as one U+FFFD.
  EXPECT_EQ(stream(byte_ids({0x41, 0xE2, 0x82})), (std::vector<std::string>{"A", "", "", kFFFD}));
}

TEST(Detokenizer, ValidUtf8) {
  EXPECT_EQ(valid_utf8("abc \xC3\xA9 \xF0\x9F\x98\x81"), "abc \xC3\xA9 \xF0\x9F\x98\x81");
  EXPECT_EQ(valid_utf8("a\xFF"
                       "b"),
            "a" + kFFFD + "b");
  EXPECT_EQ(valid_utf8("\xE0\x80\x80"), kFFFD + kFFFD + kFFFD);  // overlong 3-byte
  EXPECT_EQ(valid_utf8("\xE0\xA0"), kFFFD);                      // truncated, valid so far
  EXPECT_EQ(valid_utf8(""), "");
}

TEST(Detokenizer, PrevContinuesAfterPrompt) {
  // Resuming after BOS drops the prefixed space of the first piece, as a
  // whole decode of [BOS, ...] would.
  const int32_t hello = 15043;  // "▁Hello" (llama-spm vectors: "Hello" -> 15043)
  EXPECT_EQ(join(stream({hello, hello}, llama().bos_id())), "Hello Hello");
  EXPECT_EQ(join(stream({hello, hello})), " Hello Hello");
}

TEST(Detokenizer, RandomIdsStreamLikeSanitizedWholeDecode) {
  // Random ids, a third of them byte tokens, so that many byte sequences are
  // invalid: the stream must equal valid_utf8 of the whole decode.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any(0, 31999), byte(3, 258), pick(0, 2);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 30; ++i) ids.push_back(pick(rng) == 0 ? byte(rng) : any(rng));
    EXPECT_EQ(join(stream(ids)), valid_utf8(llama().decode(ids)));
  }
}

TEST(Detokenizer, MatchesRunCOutputOnStories260K) {
  // run.c -t 0 -n 256 printed each generated token's piece (given the token
  // before it; the first follows BOS) and a final newline. Its .ids file
  // lists the 256 generated ids, then a "achieved tok/s" line.
  SpmTokenizer tok(test::read_tokenizer_bin(kData + "tok512.bin"));
  std::istringstream in(test::read_file(kData + "run_c_greedy_t0_n256.ids"));
  std::vector<int32_t> ids{tok.bos_id()};
  int32_t id;
  while (in >> id) ids.push_back(id);
  ASSERT_EQ(ids.size(), 257u);
  const std::string expected = test::read_file(kData + "run_c_greedy_t0_n256.txt");
  EXPECT_EQ(tok.decode(ids) + "\n", expected);
  StreamingDetokenizer d(tok, tok.bos_id());
  std::string streamed;
  for (size_t i = 1; i < ids.size(); ++i) streamed += d.push(ids[i]);
  streamed += d.flush();
  EXPECT_EQ(streamed + "\n", expected);
}

TEST(Detokenizer, OutOfRangeIdThrows) {
  StreamingDetokenizer d(llama());
  EXPECT_THROW(d.push(32000), Error);
}

}  // namespace
}  // namespace nucleus
