// SentencePiece-BPE encoding/decoding against independent vectors:
// llama.cpp's tokenizer tests (ggml-vocab-llama-spm, ggml-vocab-phi-3; also
// run with Llama 2's llama2.c tokenizer.bin, the same vocabulary) and
// llama2.c run.c's encode() on the stories260K tok512 vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/tokenizer/";

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

// Every case encodes to the expected ids (no BOS), and decoding gives the
// text back: with BOS first the text exactly (the prefixed space is dropped
// after BOS); without BOS, the text with the prefixed space.
void check_vectors(const Tokenizer& tok, const std::string& vectors, size_t expected_cases) {
  const auto cases = test::read_vectors(kData + vectors + ".inp", kData + vectors + ".out");
  ASSERT_EQ(cases.size(), expected_cases);
  size_t passed = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, false);
    EXPECT_EQ(ids_str(ids), ids_str(c.ids)) << "text: '" << c.text << "'";
    if (ids == c.ids) ++passed;

    std::vector<int32_t> with_bos = tok.encode(c.text, true);
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos[0], tok.bos_id());
    EXPECT_EQ(std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()), ids);
    EXPECT_EQ(tok.decode(with_bos), c.text);
    std::string spaced = c.text.empty() ? "" : " ";
    spaced += c.text;
    EXPECT_EQ(tok.decode(ids), spaced);
  }
  EXPECT_EQ(passed, cases.size());
  std::printf("%s: %zu/%zu cases pass\n", vectors.c_str(), passed, cases.size());
}

TEST(SpmTokenizer, LlamaSpmGgufVectors) {
  const Vocab v = test::read_gguf_vocab_for_test(kData + "ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(v.model, "llama");
  auto tok = make_tokenizer(v);
  EXPECT_EQ(tok->vocab_size(), 32000);
  check_vectors(*tok, "ggml-vocab-llama-spm.gguf", 46);
}

TEST(SpmTokenizer, Phi3GgufVectors) {
  const Vocab v = test::read_gguf_vocab_for_test(kData + "ggml-vocab-phi-3.gguf");
  auto tok = make_tokenizer(v);
  check_vectors(*tok, "ggml-vocab-phi-3.gguf", 46);
}

TEST(SpmTokenizer, Llama2TokenizerBinPassesLlamaSpmVectors) {
  const Vocab v = test::read_tokenizer_bin(kData + "llama2_tokenizer.bin");
  ASSERT_EQ(v.size(), 32000);
  SpmTokenizer tok(v);
  check_vectors(tok, "ggml-vocab-llama-spm.gguf", 46);
}

TEST(SpmTokenizer, Tok512MatchesRunCEncode) {
  const Vocab v = test::read_tokenizer_bin(kData + "tok512.bin");
  ASSERT_EQ(v.size(), 512);
  SpmTokenizer tok(v);
  check_vectors(tok, "tok512", 46);
}

// The built-in cases of npm llama-tokenizer-js@1.2.2 (ids include BOS).
void check_js_cases(const Tokenizer& tok) {
  const auto j =
      nlohmann::json::parse(test::read_file(kData + "js_tokenizer_package_vectors.json"));
  const auto& cases = j.at("llama2-spm (llama-tokenizer-js@1.2.2)");
  ASSERT_EQ(cases.size(), 12u);
  size_t passed = 0;
  for (const auto& c : cases) {
    const auto text = c.at("text").get<std::string>();
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    ASSERT_TRUE(c.at("add_bos").get<bool>());
    const auto ids = tok.encode(text, true);
    EXPECT_EQ(ids_str(ids), ids_str(expected)) << "text: '" << text << "'";
    passed += ids == expected;
    EXPECT_EQ(tok.decode(ids), text);
  }
  std::printf("llama-tokenizer-js cases: %zu/%zu pass\n", passed, cases.size());
}

TEST(SpmTokenizer, LlamaTokenizerJsCases) {
  check_js_cases(
      *make_tokenizer(test::read_gguf_vocab_for_test(kData + "ggml-vocab-llama-spm.gguf")));
  check_js_cases(SpmTokenizer(test::read_tokenizer_bin(kData + "llama2_tokenizer.bin")));
}

TEST(SpmTokenizer, Phi3UserDefinedTokenIsSplitFromText) {
  // In the Phi-3 vocabulary "</s>" (id 2) is USER_DEFINED, so llama.cpp
  // matches it in raw text even without special-token parsing, and the text
  // after it gets its own U+2581 prefix like the text before it.
  SpmTokenizer tok(test::read_gguf_vocab_for_test(kData + "ggml-vocab-phi-3.gguf"));
  ASSERT_EQ(tok.type(2), TokenType::UserDefined);
  std::vector<int32_t> expected = tok.encode("Hello", false);
  expected.push_back(2);
  for (int32_t id : tok.encode("world", false)) expected.push_back(id);
  EXPECT_EQ(tok.encode("Hello</s>world", false), expected);
  EXPECT_EQ(tok.token_bytes(2, 1), "</s>");
  // Control tokens such as <|user|> (32010) stay text.
  ASSERT_EQ(tok.type(32010), TokenType::Control);
  const auto ids = tok.encode("<|user|>", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 32010), 0);
  EXPECT_EQ(tok.token_bytes(32010, 1), "");
}

TEST(SpmTokenizer, EncodeWithSpecialsParsesControlTokens) {
  // "<s>Hello</s>": the control tokens become ids 1 and 2, and "Hello",
  // following a special token, gets the U+2581 prefix: "▁Hello" = 15043 (the
  // llama-spm vectors encode "Hello" as 15043).
  const Vocab v = test::read_gguf_vocab_for_test(kData + "ggml-vocab-llama-spm.gguf");
  SpmTokenizer tok(v);
  EXPECT_EQ(tok.encode_with_specials("<s>Hello</s>", false), (std::vector<int32_t>{1, 15043, 2}));
  EXPECT_EQ(tok.encode_with_specials("Hello", true), (std::vector<int32_t>{1, 15043}));
  // Plain encode keeps them as text.
  const auto plain = tok.encode("<s>Hello</s>", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1) + std::count(plain.begin(), plain.end(), 2),
            0);
  // llama2.c's tokenizer.bin spells BOS/EOS "\n<s>\n" / "\n</s>\n"; they
  // still match "<s>" / "</s>".
  SpmTokenizer bin(test::read_tokenizer_bin(kData + "llama2_tokenizer.bin"));
  EXPECT_EQ(bin.encode_with_specials("<s>Hello</s>", false), (std::vector<int32_t>{1, 15043, 2}));
}

// A small hand-built vocabulary; expectations below are worked out by hand.
Vocab toy_vocab() {
  Vocab v;
  v.tokens = {"<unk>",
              "<s>",
              "</s>",
              "a",
              "b",
              "ab",
              "ba",
              "\xE2\x96\x81",
              "\xE2\x96\x81"
              "a",
              "<|u|>",
              "<0x7A>"};
  v.scores = {0, 0, 0, 0, 0, -1, -1, -5, -2, 0, 0};
  v.types = {TokenType::Unknown, TokenType::Control,     TokenType::Control, TokenType::Normal,
             TokenType::Normal,  TokenType::Normal,      TokenType::Normal,  TokenType::Normal,
             TokenType::Normal,  TokenType::UserDefined, TokenType::Byte};
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_space_prefix = false;
  return v;
}

TEST(SpmTokenizer, EqualScoresMergeLeftmostPairFirst) {
  // "aba": candidate pairs "ab" (at 0) and "ba" (at 1) both score -1; the
  // leftmost merges, leaving "ab" + "a".
  SpmTokenizer tok(toy_vocab());
  EXPECT_EQ(tok.encode("aba", false), (std::vector<int32_t>{5, 3}));
}

TEST(SpmTokenizer, HigherScoreMergesFirst) {
  // With "ba" scoring -0.5 > "ab" -1, "aba" becomes "a" + "ba".
  Vocab v = toy_vocab();
  v.scores[6] = -0.5f;
  SpmTokenizer tok(v);
  EXPECT_EQ(tok.encode("aba", false), (std::vector<int32_t>{3, 6}));
}

TEST(SpmTokenizer, ByteFallbackAndUnk) {
  // 'z' has the byte token <0x7A> (id 10); 'q' has neither a piece nor a byte
  // token, so it becomes UNK (id 0). A space is U+2581 (id 7).
  SpmTokenizer tok(toy_vocab());
  EXPECT_EQ(tok.encode("z q", false), (std::vector<int32_t>{10, 7, 0}));
  // Without an UNK either, encoding such text is an error, not a crash.
  Vocab v = toy_vocab();
  v.unk_id = -1;
  v.types[0] = TokenType::Normal;
  SpmTokenizer no_unk(v);
  EXPECT_THROW(no_unk.encode("q", false), Error);
}

TEST(SpmTokenizer, UserDefinedTokensSplitTextAndPrefixSpace) {
  // llama.cpp matches user-defined tokens in the raw text and, with
  // add_space_prefix, prefixes U+2581 to every text piece that starts the
  // input or follows such a token: "a<|u|>a" -> "▁a" <|u|> "▁a" = 8 9 8.
  Vocab v = toy_vocab();
  v.add_space_prefix = true;
  SpmTokenizer tok(v);
  EXPECT_EQ(tok.encode("a<|u|>a", false), (std::vector<int32_t>{8, 9, 8}));
  EXPECT_EQ(tok.encode("<|u|>", true), (std::vector<int32_t>{1, 9}));
  // Control tokens are not parsed from text: "<s>" is plain characters here,
  // all of which fall back to UNK.
  const auto ids = tok.encode("<s>", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 0);
}

TEST(SpmTokenizer, TokenBytes) {
  const Vocab v = test::read_gguf_vocab_for_test(kData + "ggml-vocab-llama-spm.gguf");
  SpmTokenizer tok(v);
  const int32_t hello = tok.find("\xE2\x96\x81Hello");
  ASSERT_EQ(hello, 15043);  // from the llama-spm vectors: "Hello" -> 15043
  EXPECT_EQ(tok.token_bytes(hello, -1), " Hello");
  EXPECT_EQ(tok.token_bytes(hello, tok.bos_id()), "Hello");  // prefixed space dropped after BOS
  EXPECT_EQ(tok.token_bytes(hello, 29871), " Hello");
  EXPECT_EQ(tok.token_bytes(tok.bos_id(), -1), "");
  EXPECT_EQ(tok.token_bytes(tok.eos_id(), hello), "");
  EXPECT_EQ(tok.token_bytes(tok.find("<0x0A>"), -1), "\n");
  EXPECT_EQ(tok.token_bytes(tok.find("<0x20>"), tok.bos_id()), " ");  // a byte is never stripped
  EXPECT_EQ(tok.token_bytes(tok.find("<0xF0>"), -1), "\xF0");
  EXPECT_EQ(tok.token_bytes(0, -1), " \xE2\x81\x87 ");  // UNK: SentencePiece's " ⁇ "
  EXPECT_THROW(tok.token_bytes(-1, -1), Error);
  EXPECT_THROW(tok.token_bytes(32000, -1), Error);
  EXPECT_THROW(tok.decode({15043, 40000}), Error);
}

TEST(SpmTokenizer, RejectsInconsistentVocab) {
  Vocab v = toy_vocab();
  v.scores.pop_back();
  EXPECT_THROW(SpmTokenizer{v}, Error);
  v = toy_vocab();
  v.types.push_back(TokenType::Normal);
  EXPECT_THROW(SpmTokenizer{v}, Error);
  v = toy_vocab();
  v.bos_id = 11;
  EXPECT_THROW(SpmTokenizer{v}, Error);
  v = toy_vocab();
  v.unk_id = -7;
  EXPECT_THROW(SpmTokenizer{v}, Error);
  v = toy_vocab();
  v.scores[4] = std::nanf("");
  EXPECT_THROW(SpmTokenizer{v}, Error);
  EXPECT_THROW(SpmTokenizer{Vocab{}}, Error);
}

TEST(MakeTokenizer, UnsupportedModelNamesIt) {
  Vocab v = toy_vocab();
  v.model = "wordpiece-x";
  try {
    make_tokenizer(v);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wordpiece-x"), std::string::npos) << e.what();
  }
}

TEST(SpmTokenizer, LongInputIsFast) {
  // 256 KB of mixed text (with a long run without spaces and byte-fallback
  // characters) must encode in well under a second: the merge loop is a
  // priority queue over linked symbols, not a quadratic rescan.
  const Vocab v = test::read_gguf_vocab_for_test(kData + "ggml-vocab-llama-spm.gguf");
  SpmTokenizer tok(v);
  std::string text;
  while (text.size() < (1u << 18)) {
    text += "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3 ";
    text += std::string(200, 'a');
    text += "\n\t  3333333 ";
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text, true);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("encoded %zu bytes into %zu tokens in %.3f s\n", text.size(), ids.size(), s);
  EXPECT_LT(s, 2.0);  // ~0.1-0.2 s measured; a quadratic merge loop takes minutes
  EXPECT_EQ(tok.decode(ids), text);
}

}  // namespace
}  // namespace nucleus
