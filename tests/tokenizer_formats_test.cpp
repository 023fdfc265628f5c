// The tokenizer on vocabularies as the engine's own readers (src/formats/)
// produce them: the same independent vectors as tokenizer_spm_test, through
// read_gguf_vocab and read_llama2c_vocab instead of the test-local readers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_support.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/tokenizer/";

size_t passing(const Tokenizer& tok, const std::string& vectors) {
  const auto cases = test::read_vectors(kData + vectors + ".inp", kData + vectors + ".out");
  EXPECT_EQ(cases.size(), 46u);
  size_t passed = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, false);
    EXPECT_EQ(ids, c.ids) << vectors << ": '" << c.text << "'";
    std::vector<int32_t> with_bos{tok.bos_id()};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    EXPECT_EQ(tok.decode(with_bos), c.text);
    passed += ids == c.ids;
  }
  return passed;
}

TEST(TokenizerFormats, GgufVocabs) {
  auto llama = make_tokenizer(read_gguf_vocab(kData + "ggml-vocab-llama-spm.gguf"));
  EXPECT_EQ(passing(*llama, "ggml-vocab-llama-spm.gguf"), 46u);
  auto phi3 = make_tokenizer(read_gguf_vocab(kData + "ggml-vocab-phi-3.gguf"));
  EXPECT_EQ(phi3->eos_id(), 32000);  // <|endoftext|>
  EXPECT_EQ(passing(*phi3, "ggml-vocab-phi-3.gguf"), 46u);
}

TEST(TokenizerFormats, Llama2cVocabs) {
  auto llama = make_tokenizer(read_llama2c_vocab(kData + "llama2_tokenizer.bin", 32000));
  EXPECT_EQ(passing(*llama, "ggml-vocab-llama-spm.gguf"), 46u);
  auto tok512 = make_tokenizer(read_llama2c_vocab(kData + "tok512.bin", 512));
  EXPECT_EQ(passing(*tok512, "tok512"), 46u);
}

}  // namespace
}  // namespace nucleus
