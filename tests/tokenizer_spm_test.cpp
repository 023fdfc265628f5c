// SentencePiece-BPE encoding/decoding against independent vectors:
// llama.cpp's tokenizer tests (ggml-vocab-llama-spm, ggml-vocab-phi-3; also
// run with Llama 2's llama2.c tokenizer.bin, the same vocabulary) and
// llama2.c run.c's encode() on the stories260K tok512 vocabulary.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace nucleus
