// Byte-level BPE building blocks (UTF-8/NFC, the GPT-2 byte alphabet, the
// merge engine, regex splitting) checked by hand, and whole tokenizers
// against llama.cpp's test vectors: GPT-2 from encoder.json + vocab.bpe and
// from its GGUF, and the GGUF path (make_bpe_tokenizer_from_vocab) for the
// Llama 3 and Qwen2 vocabularies. Provenance: tests/data/bpe/README.md.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/gguf.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_support.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/bpe/";

using test::read_file;

// ---------------------------------------------------------------- unicode

TEST(Unicode, DecodesAndRejectsMalformedUtf8) {
  size_t len;
  EXPECT_EQ(unicode::decode_utf8("\xC3\xA9", 0, len), U'\u00E9');  // é = C3 A9
  EXPECT_EQ(len, 2u);
  EXPECT_EQ(unicode::decode_utf8("\xF0\x9F\xA6\x99", 0, len), U'\U0001F999');  // 🦙
  EXPECT_EQ(len, 4u);
  EXPECT_EQ(unicode::decode_utf8("\xC0\x80", 0, len), U'\uFFFD');  // overlong NUL
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(unicode::decode_utf8("\xED\xA0\x80", 0, len), U'\uFFFD');  // surrogate D800
  EXPECT_EQ(unicode::decode_utf8("\xE2\x82", 0, len), U'\uFFFD');      // truncated
  EXPECT_TRUE(unicode::is_valid_utf8("a\xC3\xA9"));
  EXPECT_FALSE(unicode::is_valid_utf8("a\xC3"));
  EXPECT_EQ(unicode::to_utf8(0x1F999), "\xF0\x9F\xA6\x99");
}

TEST(Unicode, NfcByHand) {
  // U+00E9 é has the canonical decomposition e + U+0301.
  EXPECT_EQ(unicode::nfc("e\u0301"), "\u00E9");
  // Hangul: L U+1100 (index 0) + V U+1161 (0) + T U+11A8 (1) ->
  // U+AC00 + (0*21 + 0)*28 + 1 = U+AC01.
  EXPECT_EQ(unicode::nfc("\u1100\u1161\u11A8"), "\uAC01");
  // Marks are put in class order first: U+0323 (class 220) before U+0302
  // (230); a + U+0323 = U+1EA1 ạ, then U+1EA1 + U+0302 = U+1EAD ậ.
  EXPECT_EQ(unicode::nfc("a\u0302\u0323"), "\u1EAD");
  // U+0958 (Devanagari QA = U+0915 U+093C) is a composition exclusion.
  EXPECT_EQ(unicode::nfc("\u0958"), "\u0915\u093C");
  // U+212B ANGSTROM SIGN is a singleton decomposition to U+00C5.
  EXPECT_EQ(unicode::nfc("\u212B"), "\u00C5");
  // A second acute is blocked by the first (same class 230).
  EXPECT_EQ(unicode::nfc("a\u0301\u0301"), "\u00E1\u0301");
  // Already-NFC text and invalid bytes are left alone.
  EXPECT_EQ(unicode::nfc("Cửa Việt"), "Cửa Việt");
  EXPECT_EQ(unicode::nfc("x\xFF"
                         "e\u0301"),
            "x\xFF\u00E9");
}

// ------------------------------------------------------------- byte level

TEST(ByteLevel, AlphabetByHand) {
  // Bytes 0x00..0x20 (33 of them) do not stand for themselves and take
  // U+0100..U+0120; so space (the 33rd) is U+0120 'Ġ' and '\n' is U+010A 'Ċ'.
  EXPECT_EQ(byte_level::byte_to_char(' '), U'\u0120');
  EXPECT_EQ(byte_level::byte_to_char('\n'), U'\u010A');
  EXPECT_EQ(byte_level::byte_to_char('A'), U'A');
  // 0x7F..0xA0 (34 bytes) follow: 0x7F -> U+0121; 0xAD is the last, 33+34 -> U+0143.
  EXPECT_EQ(byte_level::byte_to_char(0x7F), U'\u0121');
  EXPECT_EQ(byte_level::byte_to_char(0xAD), U'\u0143');
  EXPECT_EQ(byte_level::byte_to_char(0xE9), U'\u00E9');
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(byte_level::decode(byte_level::encode(all)), all);
  EXPECT_EQ(byte_level::encode(" hi\n"), "\u0120hi\u010A");
  EXPECT_FALSE(byte_level::decode("\u4E2D").has_value());  // not in the alphabet
}

// ------------------------------------------------------------ merge engine

TokenMap toy_vocab() {
  return {{"a", 0},   {"b", 1},     {"c", 2},      {"ab", 3}, {"bc", 4},
          {"abc", 5}, {"<unk>", 6}, {"<0x7A>", 7}, {"aa", 8}};
}

std::vector<int32_t> bpe(const BpeModel& m, std::string_view w) {
  std::vector<int32_t> out;
  m.encode_word(w, out);
  return out;
}

TEST(BpeModel, LowestRankFirst) {
  // "abc": pairs (a,b) rank 1 and (b,c) rank 0 -> b+c first -> (a,bc) rank 2 -> abc.
  BpeModel m(toy_vocab(), {{"b", "c"}, {"a", "b"}, {"a", "bc"}}, {}, "toy");
  EXPECT_EQ(bpe(m, "abc"), (std::vector<int32_t>{5}));
  // With (a,b) ranked first: ab, then no merge (ab,c) exists -> [ab, c].
  BpeModel m2(toy_vocab(), {{"a", "b"}, {"b", "c"}, {"a", "bc"}}, {}, "toy");
  EXPECT_EQ(bpe(m2, "abc"), (std::vector<int32_t>{3, 2}));
  // Equal ranks: the leftmost pair merges first: "aaa" -> [aa, a].
  BpeModel m3(toy_vocab(), {{"a", "a"}}, {}, "toy");
  EXPECT_EQ(bpe(m3, "aaa"), (std::vector<int32_t>{8, 0}));
  EXPECT_EQ(bpe(m3, "aaaa"), (std::vector<int32_t>{8, 8}));
}

TEST(BpeModel, IgnoreMergesTakesWholeWords) {
  // "abc" is a token but no merge chain reaches it from (a,b) alone.
  BpeOptions o;
  BpeModel plain(toy_vocab(), {}, o, "toy");
  EXPECT_EQ(bpe(plain, "abc"), (std::vector<int32_t>{0, 1, 2}));
  o.ignore_merges = true;
  BpeModel ignoring(toy_vocab(), {}, o, "toy");
  EXPECT_EQ(bpe(ignoring, "abc"), (std::vector<int32_t>{5}));
}

TEST(BpeModel, UnknownsAndByteFallback) {
  BpeOptions o;
  o.unk_id = 6;
  EXPECT_EQ(bpe(BpeModel(toy_vocab(), {}, o, "toy"), "axxb"), (std::vector<int32_t>{0, 6, 6, 1}));
  o.fuse_unk = true;
  EXPECT_EQ(bpe(BpeModel(toy_vocab(), {}, o, "toy"), "axxb"), (std::vector<int32_t>{0, 6, 1}));
  // 'z' = 0x7A has a byte token; 'x' has none and falls back to unk.
  o.byte_fallback = true;
  EXPECT_EQ(bpe(BpeModel(toy_vocab(), {}, o, "toy"), "zx"), (std::vector<int32_t>{7, 6}));
  o.unk_id = -1;  // no unk token: the character is dropped
  EXPECT_EQ(bpe(BpeModel(toy_vocab(), {}, o, "toy"), "axb"), (std::vector<int32_t>{0, 1}));
}

TEST(BpeModel, RejectsMergesOutsideTheVocabulary) {
  try {
    BpeModel(toy_vocab(), {{"a", "b"}, {"c", "q"}}, {}, "toy.json: model.merges");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "toy.json: model.merges: merge 1 ('c' 'q') uses a token missing from the vocabulary");
  }
}

// --------------------------------------------------------------- splitting

TEST(Split, BehaviorsByHand) {
  // "a-b--c" with every '-' a match: segments a | - | b | - | - | c.
  const std::string t = "a-b--c";
  const std::vector<std::pair<size_t, size_t>> m{{1, 2}, {3, 4}, {4, 5}};
  using V = std::vector<std::string>;
  EXPECT_EQ(split_text(t, m, SplitBehavior::Removed, false), (V{"a", "b", "c"}));
  EXPECT_EQ(split_text(t, m, SplitBehavior::Isolated, false), (V{"a", "-", "b", "-", "-", "c"}));
  // A delimiter joins the piece before it unless that piece was a delimiter.
  EXPECT_EQ(split_text(t, m, SplitBehavior::MergedWithPrevious, false), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(split_text(t, m, SplitBehavior::MergedWithNext, false), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(split_text(t, m, SplitBehavior::Contiguous, false), (V{"a", "-", "b", "--", "c"}));
  // Inverted, the letters are the delimiters and are removed.
  EXPECT_EQ(split_text(t, m, SplitBehavior::Removed, true), (V{"-", "-", "-"}));
}

TEST(Split, Gpt2RegexByHand) {
  Regex re(regex_patterns::kGpt2, false, "test");
  const std::string t = "Hello world's  x";
  std::vector<std::string> pieces;
  for (auto [b, e] : re.find_all(t)) pieces.push_back(t.substr(b, e - b));
  // "  x": \s+(?!\S) takes one space, leaving " x" for " ?\p{L}+".
  EXPECT_EQ(pieces, (std::vector<std::string>{"Hello", " world", "'s", " ", " x"}));
  // Invalid UTF-8 never matches and never makes the search fail.
  EXPECT_EQ(re.find_all("a\xFF"
                        "b")
                .size(),
            2u);
  EXPECT_THROW(Regex("(unclosed", false, "test"), Error);
  EXPECT_EQ(Regex("a.b", true, "test").replace_all("xa.bya+b", "_"), "x_ya+b");
}

// --------------------------------------------------------- whole tokenizers

// llama.cpp's vocab test vectors: .inp strings, .out ids per string.
std::vector<test::VectorCase> load_vectors(const std::string& stem) {
  return test::read_vectors(kData + stem + ".inp", kData + stem + ".out");
}

int run_vectors(const Tokenizer& tok, const std::string& stem, const std::string& label) {
  const auto cases = load_vectors(stem);
  EXPECT_EQ(cases.size(), 46u);
  int pass = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = tok.encode(cases[i].text, false);
    EXPECT_EQ(ids, cases[i].ids) << label << " case " << i << ": '" << cases[i].text << "'";
    EXPECT_EQ(tok.decode(ids), cases[i].text) << label << " round trip, case " << i;
    if (ids == cases[i].ids) ++pass;
  }
  std::printf("%s on %s: %d/%zu\n", label.c_str(), stem.c_str(), pass, cases.size());
  return pass;
}

TEST(Gpt2, EncoderJsonAndVocabBpeMatchLlamaCpp) {
  const auto tok = load_hf_tokenizer(kData + "gpt2");
  EXPECT_EQ(run_vectors(*tok, "ggml-vocab-gpt-2.gguf", "encoder.json+vocab.bpe"), 46);
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), 50256);  // <|endoftext|>
  EXPECT_FALSE(tok->add_bos_default());
}

TEST(Gpt2, GgufVocabMatchesLlamaCpp) {
  const Vocab v = read_gguf_vocab(kData + "ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "gpt-2");
  const auto tok = make_bpe_tokenizer_from_vocab(v);
  EXPECT_EQ(run_vectors(*tok, "ggml-vocab-gpt-2.gguf", "GGUF gpt-2"), 46);
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eos_id(), v.eos_id);
  EXPECT_FALSE(tok->add_bos_default());  // the file has no add_bos_token; BPE defaults to none
}

// The GGUF path for vocabularies whose GGUFs are too large to keep: build
// the Vocab a GGUF converter would write (tokens by id, merges "a b",
// added special tokens as Control) from the tokenizer.json.
Vocab vocab_from_tokenizer_json(const std::string& path, const std::string& pre) {
  const auto j = nlohmann::json::parse(read_file(path));
  Vocab v;
  v.model = "gpt2";
  v.pre = pre;
  for (const auto& [tok, id] : j["model"]["vocab"].items()) {
    const auto i = id.get<size_t>();
    if (v.tokens.size() <= i) v.tokens.resize(i + 1);
    v.tokens[i] = tok;
  }
  for (const auto& a : j["added_tokens"]) {
    const auto i = a["id"].get<size_t>();
    if (v.tokens.size() <= i) v.tokens.resize(i + 1);
    v.tokens[i] = a["content"];
  }
  v.types.assign(v.tokens.size(), TokenType::Normal);
  for (const auto& a : j["added_tokens"])
    v.types[a["id"].get<size_t>()] =
        a["special"].get<bool>() ? TokenType::Control : TokenType::UserDefined;
  for (const auto& m : j["model"]["merges"])
    v.merges.push_back(m.is_string() ? m.get<std::string>()
                                     : m[0].get<std::string>() + " " + m[1].get<std::string>());
  return v;
}

TEST(GgufPath, Llama3PreMatchesLlamaCpp) {
  const auto tok = make_bpe_tokenizer_from_vocab(
      vocab_from_tokenizer_json(kData + "llama3/tokenizer.json", "llama-bpe"));
  EXPECT_EQ(run_vectors(*tok, "ggml-vocab-llama-bpe.gguf", "vocab(pre=llama-bpe)"), 46);
}

TEST(GgufPath, Qwen2PreMatchesLlamaCpp) {
  const auto tok = make_bpe_tokenizer_from_vocab(
      vocab_from_tokenizer_json(kData + "qwen3/tokenizer.json", "qwen2"));
  EXPECT_EQ(run_vectors(*tok, "ggml-vocab-qwen2.gguf", "vocab(pre=qwen2)"), 46);
}

TEST(GgufPath, RepeatedStringsKeepTheirIds) {
  // Tokens 3 and 4 are both "ab": encoding gives the first, decoding either works.
  Vocab v;
  v.model = "gpt2";
  v.tokens = {"a", "b", "<|end|>", "ab", "ab"};
  v.types = {TokenType::Normal, TokenType::Normal, TokenType::Control, TokenType::Normal,
             TokenType::Normal};
  v.merges = {"a b"};
  v.eos_id = 2;
  const auto tok = make_bpe_tokenizer_from_vocab(v);
  EXPECT_EQ(tok->encode("ab<|end|>", false), (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(tok->decode({4, 3, 2}), "abab");
}

TEST(GgufPath, RefusesUnknownPreAndModel) {
  Vocab v;
  v.model = "gpt2";
  v.pre = "falcon";
  v.tokens = {"a"};
  try {
    make_bpe_tokenizer_from_vocab(v);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.pre 'falcon' is not supported"),
              std::string::npos)
        << e.what();
  }
  v.pre = "gpt-2";
  v.model = "llama";
  EXPECT_THROW(make_bpe_tokenizer_from_vocab(v), Error);
  v.model = "gpt2";
  v.bos_id = 5;  // out of range for one token
  EXPECT_THROW(make_bpe_tokenizer_from_vocab(v), Error);
}

}  // namespace
}  // namespace nucleus
