// GGUF reader on real files. Expected values come from independent sources:
// shared/ref/hf/stories260K.json (transformers' config of the same model),
// shared/README.md's descriptions, and the Llama 2 vocabulary as shipped by
// llama2.c (tokenizer.bin) versus llama.cpp (ggml-vocab-llama-spm.gguf).
#include <gtest/gtest.h>

#include <string>

#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/model_file.h"
#include "formats_test_util.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/formats/";
const std::string kStories = std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf";

TEST(Gguf, Stories260KConfig) {
  const ModelFile m = load_model_file(kStories);
  const ModelConfig& c = m.config;
  // shared/ref/hf/stories260K.json meta.config.
  EXPECT_EQ(c.format, "gguf");
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);  // llama2c_params.head_size
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_layout, RopeLayout::Interleaved);
  EXPECT_EQ(c.rope_scaling.kind, RopeScaling::Kind::None);
  EXPECT_FALSE(c.attn_bias);
}

TEST(Gguf, Stories260KTensors) {
  const ModelFile m = load_model_file(kStories);
  // 5 layers x 9 tensors + token_embd + output_norm, and this file carries an
  // explicit output.weight (a copy of the shared classifier).
  EXPECT_EQ(m.tensors.size(), 5u * 9u + 3u);
  EXPECT_FALSE(m.config.tied_embeddings);
  for (const auto& [name, t] : m.tensors) {
    EXPECT_EQ(t.type, DType::F32) << name;  // README: F32
    EXPECT_EQ(t.nbytes, static_cast<size_t>(t.numel()) * 4) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, 0u) << name;  // default GGUF alignment
  }
  const TensorView& embd = m.get("token_embd.weight");
  EXPECT_EQ(embd.shape, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(m.get("blk.4.attn_k.weight").shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(m.get("blk.0.ffn_down.weight").shape, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(m.find("blk.5.attn_q.weight"), nullptr);
  EXPECT_THROW(m.get("blk.5.attn_q.weight"), Error);
  // Views point into the mapping, which the ModelFile keeps alive.
  ASSERT_EQ(m.mappings.size(), 1u);
  EXPECT_GE(embd.data, m.mappings[0]->data());
  EXPECT_LE(embd.data + embd.nbytes, m.mappings[0]->data() + m.mappings[0]->size());
}

TEST(Gguf, Stories260KVocabAndMetadata) {
  const ModelFile m = load_model_file(kStories);
  const Vocab& v = m.vocab;
  ASSERT_EQ(v.size(), 512);  // HF config vocab_size
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.bos_id, 1);  // HF config bos/eos
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_EQ(v.pad_id, -1);  // the file stores 0xFFFFFFFF ("none")
  EXPECT_EQ(v.scores.size(), 512u);
  EXPECT_EQ(v.types.size(), 512u);
  EXPECT_EQ(v.tokens[1], "<s>");
  EXPECT_EQ(v.types[1], TokenType::Control);
  EXPECT_EQ(v.tokens[3], "<0x00>");
  EXPECT_EQ(v.types[3], TokenType::Byte);
  bool found_arch = false;
  for (const auto& [k, val] : m.metadata) {
    if (k == "general.architecture") {
      found_arch = true;
      EXPECT_EQ(val, "llama");
    }
  }
  EXPECT_TRUE(found_arch);
}

TEST(Gguf, TypedLookups) {
  const GgufFile g(kStories);
  EXPECT_EQ(g.version(), 3u);  // README: GGUF v3
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(g.get_float("llama.embedding_length"), 64.0);  // integers widen to float
  EXPECT_NEAR(g.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_FALSE(g.find_int("llama.no_such_key").has_value());
  EXPECT_THROW(g.get_int("llama.no_such_key"), Error);
  EXPECT_THROW(g.get_int("general.architecture"), Error);  // string, not integer
  EXPECT_THROW(g.get_bool("llama.block_count"), Error);
  EXPECT_THROW(g.get_string_array("tokenizer.ggml.scores"), Error);
  EXPECT_EQ(g.get_array("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(g.get_array("tokenizer.ggml.scores").floats.size(), 512u);
  EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type")[3],
            6);  // <0x00> is a byte token (GGUF type 6)
  EXPECT_THROW(g.get_int_array("tokenizer.ggml.scores"), Error);
  EXPECT_EQ(g.get_float_array("tokenizer.ggml.scores").size(), 512u);
  EXPECT_EQ(g.tensor_infos().size(), 48u);
  try {
    g.get_int("general.architecture");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("general.architecture"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(kStories), std::string::npos);
  }
}

TEST(Gguf, TinyRandomLlama2F16) {
  // README: F16 matrices, dim 8, 1 layer, full 32000-token Llama 2 vocab.
  const ModelFile m = load_model_file(kData + "llama-2-tiny-random.gguf");
  EXPECT_EQ(m.config.dim, 8);
  EXPECT_EQ(m.config.n_layers, 1);
  EXPECT_EQ(m.config.vocab_size, 32000);
  EXPECT_EQ(m.vocab.size(), 32000);
  EXPECT_EQ(m.get("token_embd.weight").type, DType::F16);
  EXPECT_EQ(m.get("blk.0.attn_q.weight").type, DType::F16);
  EXPECT_EQ(m.get("token_embd.weight").nbytes, 8u * 32000u * 2u);
  EXPECT_EQ(m.get("blk.0.attn_norm.weight").shape, (std::vector<int64_t>{8}));
  EXPECT_NO_THROW(m.config.validate());
}

TEST(Gguf, VocabOnlyFile) {
  // llama.cpp's vocab-only GGUF has no tensors; it must still give a vocabulary.
  const std::string path = kData + "ggml-vocab-llama-spm.gguf";
  const Vocab v = read_gguf_vocab(path);
  ASSERT_EQ(v.size(), 32000);
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.pre, "default");
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE(v.add_eos);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  // The full loader refuses it as a model but loads it with vocab_only.
  EXPECT_THROW(load_model_file(path), Error);
  LoadOptions opt;
  opt.vocab_only = true;
  const ModelFile m = load_model_file(path, opt);
  EXPECT_EQ(m.vocab.size(), 32000);
  EXPECT_TRUE(m.tensors.empty());
}

TEST(Gguf, Llama2VocabMatchesLlama2cTokenizer) {
  // Two independent exports of the Llama 2 SentencePiece vocabulary: llama.cpp's
  // vocab GGUF and llama2.c's tokenizer.bin. After llama2.c's text convention is
  // undone they must agree token for token, score for score.
  const Vocab g = read_gguf_vocab(kData + "ggml-vocab-llama-spm.gguf");
  const Vocab b = read_llama2c_vocab(kData + "llama2_tokenizer.bin", 32000);
  ASSERT_EQ(g.size(), b.size());
  int64_t token_diff = 0, score_diff = 0, type_diff = 0;
  for (int64_t i = 0; i < g.size(); ++i) {
    token_diff += g.tokens[i] != b.tokens[i];
    score_diff += g.scores[i] != b.scores[i];
    type_diff += g.types[i] != b.types[i];
  }
  EXPECT_EQ(token_diff, 0);
  EXPECT_EQ(score_diff, 0);
  // Known, documented difference: none expected for Llama 2 (all pieces >= 259 are normal).
  EXPECT_EQ(type_diff, 0);
  EXPECT_EQ(b.size(), read_llama2c_vocab(kData + "llama2_tokenizer.bin", 0).size());
}

TEST(Gguf, BuiltTinyModelRoundTrip) {
  testing::TempDir dir;
  const std::string path = dir.write("tiny.gguf", testing::tiny_llama().build());
  const ModelFile m = load_model_file(path);
  EXPECT_EQ(m.config.dim, 8);
  EXPECT_EQ(m.config.head_dim, 4);
  EXPECT_EQ(m.config.n_kv_heads, 1);
  EXPECT_EQ(m.config.vocab_size, 4);
  EXPECT_EQ(m.config.context_length, 32);
  EXPECT_FALSE(m.config.tied_embeddings);
  const TensorView& k = m.get("blk.0.attn_k.weight");
  float x[3];
  std::memcpy(x, k.data, sizeof x);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 0.25f);
  EXPECT_EQ(x[2], 0.5f);
  EXPECT_EQ(m.vocab.tokens[3],
            "\xe2\x96\x81"
            "a");
  EXPECT_EQ(m.vocab.scores[3], -1.0f);
}

TEST(Gguf, QuantizedTensorSizes) {
  // Block layouts (formats/tensor.h): Q8_0 = 34 bytes per 32 elements, Q4_0 =
  // 18, F16/BF16 = 2 bytes per element.
  testing::GgufBuilder g;
  struct Spec {
    const char* name;
    uint32_t type;
    std::vector<uint64_t> ne;
    size_t bytes;
  };
  const std::vector<Spec> specs = {{"q8", 8, {64, 3}, 3 * 2 * 34},
                                   {"q4", 2, {32, 5}, 5 * 18},
                                   {"bf", 30, {8, 2, 2}, 8 * 2 * 2 * 2},
                                   {"h", 1, {4, 1, 1, 3}, 4 * 3 * 2}};
  for (const Spec& s : specs) {
    testing::GgufBuilder::Tensor t;
    t.name = s.name;
    t.type = s.type;
    t.ne = s.ne;
    t.data.assign(s.bytes, 0x5a);
    g.tensors.push_back(t);
  }
  const std::vector<uint8_t> bytes = g.build();
  const GgufFile f("quant.gguf", bytes);
  ASSERT_EQ(f.tensor_infos().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorView v = f.view(f.tensor_infos()[i]);
    EXPECT_EQ(static_cast<uint32_t>(v.type), specs[i].type);
    EXPECT_EQ(v.nbytes, specs[i].bytes) << specs[i].name;
    EXPECT_EQ(v.data[0], 0x5a);
    EXPECT_EQ(v.data[v.nbytes - 1], 0x5a);
  }
}

}  // namespace
}  // namespace nucleus
