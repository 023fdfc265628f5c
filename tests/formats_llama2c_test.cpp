// llama2.c reader against the GGUF of the same model: shared/README.md states
// stories260K.bin was exported from stories260K.gguf with byte-identical
// weights (shared classifier) and tok512.bin is the inverse of llama.cpp's
// llama2.c vocabulary import, so tensors and tokens must match exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/model_file.h"
#include "formats_test_util.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/formats/";
const std::string kGguf = std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf";
const std::string kBin = kData + "stories260K.bin";
const std::string kTok = kData + "tok512.bin";

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

TEST(Llama2c, Stories260KConfig) {
  LoadOptions opt;
  opt.tokenizer_path = kTok;
  const ModelFile m = load_model_file(kBin, opt);
  const ModelConfig& c = m.config;
  // Header 64,172,5,8,4,512,512 (shared/README.md and stories260K.json llama2c_params).
  EXPECT_EQ(c.format, "llama2c");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.context_length, 512);
  EXPECT_TRUE(c.tied_embeddings);  // shared_classifier
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_EQ(c.rope_layout, RopeLayout::Interleaved);
  EXPECT_EQ(m.tensors.size(), 5u * 9u + 2u);
  EXPECT_EQ(m.find("output.weight"), nullptr);
}

TEST(Llama2c, TensorsByteIdenticalToGguf) {
  LoadOptions opt;
  opt.tokenizer_path = kTok;
  const ModelFile bin = load_model_file(kBin, opt);
  const ModelFile gguf = load_model_file(kGguf);
  for (const auto& [name, t] : bin.tensors) {
    const TensorView* g = gguf.find(name);
    ASSERT_NE(g, nullptr) << name;
    EXPECT_EQ(t.type, g->type) << name;
    EXPECT_EQ(t.shape, g->shape) << name;
    EXPECT_TRUE(same_bytes(t, *g)) << name;
  }
  // The GGUF spells out the shared classifier that the .bin ties to token_embd.
  EXPECT_TRUE(same_bytes(bin.get("token_embd.weight"), gguf.get("output.weight")));
}

TEST(Llama2c, VocabEqualsGguf) {
  const ModelFile gguf = load_model_file(kGguf);
  const Vocab v = read_llama2c_vocab(kTok, 512);
  const Vocab& g = gguf.vocab;
  ASSERT_EQ(v.size(), g.size());
  for (int64_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v.tokens[i], g.tokens[i]) << i;
    EXPECT_EQ(v.scores[i], g.scores[i]) << i;
    EXPECT_EQ(v.types[i], g.types[i]) << i;
  }
  EXPECT_EQ(v.bos_id, g.bos_id);
  EXPECT_EQ(v.eos_id, g.eos_id);
  EXPECT_EQ(v.unk_id, g.unk_id);
  EXPECT_TRUE(v.add_bos);
  EXPECT_EQ(v.model, "llama");
}

TEST(Llama2c, TokenizerBesideModelIsOptional) {
  testing::TempDir dir;
  const std::string model = dir.write("model.bin", slurp(kBin));
  EXPECT_TRUE(load_model_file(model).vocab.empty());  // ids-only use still works
  dir.write("tokenizer.bin", slurp(kTok));
  EXPECT_EQ(load_model_file(model).vocab.size(), 512);
  LoadOptions opt;
  opt.vocab_only = true;
  const ModelFile vo = load_model_file(model, opt);
  EXPECT_EQ(vo.vocab.size(), 512);
  EXPECT_TRUE(vo.tensors.empty());
}

TEST(Llama2c, SeparateClassifier) {
  // Negative vocab_size = untied: wcls follows freq_cis. Build one from the
  // stories file by flipping the sign and appending a classifier.
  std::vector<uint8_t> bytes = slurp(kBin);
  int32_t vocab;
  std::memcpy(&vocab, bytes.data() + 20, 4);
  ASSERT_EQ(vocab, 512);
  vocab = -vocab;
  std::memcpy(bytes.data() + 20, &vocab, 4);
  std::vector<uint8_t> wcls(64 * 512 * 4);
  for (size_t i = 0; i < wcls.size(); ++i) wcls[i] = static_cast<uint8_t>(i * 7);
  bytes.insert(bytes.end(), wcls.begin(), wcls.end());
  testing::TempDir dir;
  const ModelFile m = load_model_file(dir.write("untied.bin", bytes));
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_EQ(m.config.vocab_size, 512);
  const TensorView& out = m.get("output.weight");
  EXPECT_EQ(out.shape, (std::vector<int64_t>{64, 512}));
  ASSERT_EQ(out.nbytes, wcls.size());
  EXPECT_EQ(std::memcmp(out.data, wcls.data(), wcls.size()), 0);
  // Missing the appended classifier is a size error.
  bytes.resize(bytes.size() - wcls.size());
  EXPECT_THROW(load_model_file(dir.write("short.bin", bytes)), Error);
}

TEST(Llama2c, Llama2TokenizerBin) {
  const Vocab v = read_llama2c_vocab(kData + "llama2_tokenizer.bin", 32000);
  ASSERT_EQ(v.size(), 32000);
  EXPECT_EQ(v.tokens[0], "<unk>");
  EXPECT_EQ(v.tokens[1], "<s>");
  EXPECT_EQ(v.tokens[2], "</s>");
  EXPECT_EQ(v.types[3], TokenType::Byte);
  EXPECT_EQ(v.tokens[3], "<0x00>");
  // Token 29871 is SentencePiece's lone "▁" (llama2.c stores it as " ").
  EXPECT_EQ(v.tokens[29871], "\xe2\x96\x81");
  // A 32000-token tokenizer is not a 512-token one.
  EXPECT_THROW(read_llama2c_vocab(kData + "llama2_tokenizer.bin", 512), Error);
  EXPECT_THROW(read_llama2c_vocab(kData + "llama2_tokenizer.bin", 32001), Error);
}

}  // namespace
}  // namespace nucleus
