// A GGUF written by `nucleus convert --vocab-from tokenizer.json` must
// tokenize exactly like the tokenizer.json it came from. For the
// SentencePiece-BPE vocabularies (Llama 2 = TinyLlama, Mistral v0.1,
// stories260K) the converted file's tokenizer is compared
//  - with the independent vectors where they exist (llama.cpp's llama-spm
//    vectors for the Llama 2 vocabulary, the npm llama-tokenizer-js /
//    mistral-tokenizer-js cases, llama2.c run.c's tok512 vectors), and
//  - with the tokenizer.json runtime (itself checked against those vectors in
//    tokenizer_hf_json_test) on every string of the project's tokenizer tests.
// The byte-level vocabularies (Qwen3's, Llama 3's) are checked the same way
// against llama.cpp's qwen2 / llama-bpe vectors.
// Provenance of the data: tests/data/bpe/README.md, tests/data/tokenizer/README.md.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/gguf_convert.h"
#include "formats/hf_vocab.h"
#include "hf_test_util.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/";

// Every test string the tokenizer tests use, plus whitespace cases around
// the pieces that differ between the source forms ("▁", " ", U+00A0).
std::vector<std::string> all_strings() {
  std::vector<std::string> out;
  for (const char* stem : {"bpe/ggml-vocab-llama-spm.gguf", "bpe/ggml-vocab-llama-bpe.gguf",
                           "bpe/ggml-vocab-qwen2.gguf", "bpe/ggml-vocab-gpt-2.gguf", "bpe/tok512",
                           "tokenizer/ggml-vocab-phi-3.gguf"})
    for (const auto& c : test::read_vectors(kData + stem + ".inp", kData + stem + ".out"))
      out.push_back(c.text);
  const auto j =
      nlohmann::json::parse(test::read_file(kData + "bpe/js_tokenizer_package_vectors.json"));
  for (const auto& [key, cases] : j.items())
    for (const auto& c : cases) out.push_back(c["text"].get<std::string>());
  for (const char* s :
       {"world! 123", " ", "  ", "a  b", "\xe2\x96\x81", "\xc2\xa0", "x\xc2\xa0y", "\t\n ",
        "<s> </s>", "<unk>", "<|im_start|>user\nhi<|im_end|>", "<|begin_of_text|>Hi"})
    out.emplace_back(s);
  return out;
}

struct Converted {
  std::unique_ptr<Tokenizer> gguf, json;
};

// tokenizer.json (+ tokenizer_config.json) -> Vocab -> GGUF file -> tokenizer.
Converted convert(const std::string& dir) {
  const Vocab v =
      read_vocab_from_tokenizer_json(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  const std::string out = hftest::scratch_dir("convert_vocab") + "/v.gguf";
  GgufConvertOptions opt;
  write_random_gguf(parse_random_spec("dim=8,layers=1,heads=1,ffn=8,vocab=8,ctx=8"), out, opt, 1,
                    &v);
  return {make_tokenizer(read_gguf_vocab(out)), load_hf_tokenizer(dir)};
}

void expect_same_as_source(const Converted& c, const std::string& name) {
  int mismatches = 0;
  const auto strings = all_strings();
  for (const std::string& s : strings) {
    // Text spelling a control token ("<s>") is plain text to a GGUF
    // tokenizer's encode() (llama.cpp without parse_special) but the token
    // itself to the tokenizer.json runtime (HF always splits added tokens):
    // a difference of the two runtimes, not of the vocabulary, so such text
    // is compared through encode_with_specials only.
    const bool spells_control =
        s.find("<s>") != std::string::npos || s.find("</s>") != std::string::npos ||
        s.find("<unk>") != std::string::npos || s.find("<|") != std::string::npos;
    for (bool bos : {false, true}) {
      if (spells_control) continue;
      const auto want = c.json->encode(s, bos);
      const auto got = c.gguf->encode(s, bos);
      EXPECT_EQ(got, want) << name << ": '" << s << "' bos " << bos;
      mismatches += got != want;
    }
    EXPECT_EQ(c.gguf->encode_with_specials(s, true), c.json->encode_with_specials(s, true))
        << name << " (specials): '" << s << "'";
  }
  EXPECT_GT(strings.size(), 200u);
  EXPECT_EQ(mismatches, 0) << name;
}

void expect_vectors(const Tokenizer& tok, const std::string& stem, size_t count) {
  const auto cases = test::read_vectors(kData + stem + ".inp", kData + stem + ".out");
  EXPECT_EQ(cases.size(), count);
  for (const auto& c : cases) EXPECT_EQ(tok.encode(c.text, false), c.ids) << stem << ": " << c.text;
}

void expect_js_cases(const Tokenizer& tok, const std::string& key) {
  const auto j =
      nlohmann::json::parse(test::read_file(kData + "bpe/js_tokenizer_package_vectors.json"));
  ASSERT_TRUE(j.contains(key));
  for (const auto& c : j[key]) {
    const bool bos = c.value("add_bos", true);
    EXPECT_EQ(tok.encode(c["text"].get<std::string>(), bos), c["ids"].get<std::vector<int32_t>>())
        << key << ": " << c["text"];
  }
}

// The reported case: Llama 2's vocabulary has both "▁" (29871) and a piece
// spelled with a plain space (30081); the space must stay unreachable.
TEST(ConvertVocab, Llama2) {
  const Converted c = convert(kData + "bpe/llama2");
  EXPECT_EQ(c.gguf->encode("world! 123", false),
            (std::vector<int32_t>{3186, 29991, 29871, 29896, 29906, 29941}));
  expect_vectors(*c.gguf, "bpe/ggml-vocab-llama-spm.gguf", 46);
  expect_js_cases(*c.gguf, "llama2-spm (llama-tokenizer-js@1.2.2)");
  expect_same_as_source(c, "llama2");
  // Decoding the converted file's ids gives the text back.
  EXPECT_EQ(c.gguf->decode(c.gguf->encode(" a  b\xc2\xa0x", true)), " a  b\xc2\xa0x");
}

TEST(ConvertVocab, Mistral) {
  const Converted c = convert(kData + "bpe/mistral-v0.1");
  expect_js_cases(*c.gguf, "mistral-v0.1-spm (mistral-tokenizer-js@1.0.0)");
  expect_same_as_source(c, "mistral");
}

TEST(ConvertVocab, Stories260K) {
  const Converted c = convert(kData + "bpe/stories260K-hf");
  expect_vectors(*c.gguf, "bpe/tok512", 46);
  expect_same_as_source(c, "stories260K");
}

// Byte-level vocabularies (tokenizer.ggml.model gpt2) convert too: Qwen2's
// (the Qwen3 tokenizer, pre "qwen2") and Llama 3's (pre "llama-bpe").
TEST(ConvertVocab, Qwen3ByteLevel) {
  const Converted c = convert(kData + "bpe/qwen3");
  expect_vectors(*c.gguf, "bpe/ggml-vocab-qwen2.gguf", 46);
  expect_same_as_source(c, "qwen3");
}

TEST(ConvertVocab, Llama3ByteLevel) {
  const Converted c = convert(kData + "bpe/llama3");
  expect_vectors(*c.gguf, "bpe/ggml-vocab-llama-bpe.gguf", 46);
  expect_same_as_source(c, "llama3");
}

}  // namespace
}  // namespace nucleus
