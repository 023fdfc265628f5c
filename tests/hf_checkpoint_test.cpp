// HF checkpoint loading against independent references: stories260K-hf is the
// GGUF stories260K re-saved by transformers (shared/README.md), so its tensors
// must equal the GGUF's byte for byte once HF's rotate-half row permutation of
// Q/K is undone; stas/tiny-random-llama-2 is an original BF16 HF checkpoint.
#include "formats/hf_checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "formats/gguf.h"
#include "hf_test_util.h"
#include "kernels/dtype.h"
#include "util/error.h"

namespace nucleus {
namespace {

using namespace hftest;

const std::string kHf = std::string(NUCLEUS_TEST_DATA) + "/hf/";
const std::string kStoriesHf = kHf + "stories260K-hf";
const std::string kStas = kHf + "stas-tiny-random-llama-2";
const std::string kStoriesGguf = std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf";

std::string meta(const ModelFile& m, const std::string& key) {
  for (const auto& [k, v] : m.metadata)
    if (k == key) return v;
  return "";
}

// Values from stories260K-hf/config.json.
TEST(HfCheckpoint, Stories260KConfig) {
  const ModelFile m = load_hf_checkpoint(kStoriesHf);
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.format, "safetensors");
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);  // 64 / 8
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.context_length, 512);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_layout, RopeLayout::Half);
  EXPECT_EQ(c.rope_scaling.kind, RopeScaling::Kind::None);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.attn_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_ids, std::vector<int32_t>{2});
  EXPECT_TRUE(m.vocab.empty());
  // 2 globals (embedding, final norm; tied: no output) + 5 layers x 9.
  EXPECT_EQ(m.tensors.size(), 2u + 5u * 9u);
  EXPECT_EQ(m.find("output.weight"), nullptr);
  EXPECT_EQ(meta(m, "hf.torch_dtype"), "float32");
  EXPECT_EQ(meta(m, "hf.tokenizer_json"), kStoriesHf + "/tokenizer.json");
  const TensorView& q = m.get("blk.0.attn_q.weight");
  EXPECT_EQ(q.type, DType::F32);
  EXPECT_EQ(q.shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(m.get("blk.4.attn_k.weight").shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(m.get("blk.2.ffn_down.weight").shape, (std::vector<int64_t>{172, 64}));
}

// Values from stas-tiny-random-llama-2/config.json and its safetensors header.
TEST(HfCheckpoint, StasTinyRandomBf16) {
  const ModelFile m = load_hf_checkpoint(kStas);
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.dim, 16);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.ffn_dim, 64);
  EXPECT_EQ(c.vocab_size, 3000);
  EXPECT_EQ(c.context_length, 256);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(meta(m, "hf.torch_dtype"), "bfloat16");
  EXPECT_EQ(meta(m, "hf.tokenizer_json"), "");
  EXPECT_EQ(m.tensors.size(), 3u + 2u * 9u);
  const TensorView& out = m.get("output.weight");
  EXPECT_EQ(out.type, DType::BF16);
  EXPECT_EQ(out.shape, (std::vector<int64_t>{16, 3000}));
  EXPECT_EQ(out.nbytes, 16u * 3000u * 2u);
}

// Undo HF's permutation: HF row h*hd + j*hd/2 + i holds Meta/GGUF row h*hd + 2i + j.
std::vector<uint8_t> interleave_rows(const TensorView& t, int64_t head_dim) {
  const size_t rb = t.nbytes / static_cast<size_t>(t.rows());
  std::vector<uint8_t> out(t.nbytes);
  for (int64_t r = 0; r < t.rows(); ++r) {
    const int64_t h = r / head_dim, w = r % head_dim;
    const int64_t src = h * head_dim + (w % 2) * (head_dim / 2) + w / 2;
    std::memcpy(out.data() + r * rb, t.data + src * rb, rb);
  }
  return out;
}

TEST(HfCheckpoint, Stories260KTensorsEqualGgufBytes) {
  const ModelFile hf = load_hf_checkpoint(kStoriesHf);
  const ModelFile gg = read_gguf(kStoriesGguf);
  ASSERT_EQ(gg.config.head_dim, 8);
  for (const auto& [name, t] : hf.tensors) {
    SCOPED_TRACE(name);
    const TensorView& g = gg.get(name);
    ASSERT_EQ(t.shape, g.shape);
    ASSERT_EQ(t.type, g.type);
    ASSERT_EQ(t.nbytes, g.nbytes);
    if (name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight")) {
      const auto fixed = interleave_rows(t, 8);
      EXPECT_EQ(std::memcmp(fixed.data(), g.data, g.nbytes), 0);
      // And the permutation is real: the raw bytes differ.
      EXPECT_NE(std::memcmp(t.data, g.data, g.nbytes), 0);
    } else {
      EXPECT_EQ(std::memcmp(t.data, g.data, g.nbytes), 0);
    }
  }
  // The GGUF stores the tied classifier explicitly, equal to the embedding.
  const TensorView& out = gg.get("output.weight");
  const TensorView& emb = hf.get("token_embd.weight");
  ASSERT_EQ(out.nbytes, emb.nbytes);
  EXPECT_EQ(std::memcmp(out.data, emb.data, emb.nbytes), 0);
}

TEST(HfCheckpoint, NameMapping) {
  EXPECT_EQ(hf_to_gguf_name("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(hf_to_gguf_name("lm_head.weight"), "output.weight");
  EXPECT_EQ(hf_to_gguf_name("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(hf_to_gguf_name("model.layers.12.self_attn.o_proj.weight"),
            "blk.12.attn_output.weight");
  EXPECT_EQ(hf_to_gguf_name("model.layers.3.self_attn.q_proj.bias"), "blk.3.attn_q.bias");
  EXPECT_EQ(hf_to_gguf_name("model.layers.0.post_attention_layernorm.weight"),
            "blk.0.ffn_norm.weight");
  EXPECT_EQ(hf_to_gguf_name("model.layers.0.mlp.down_proj.weight"), "blk.0.ffn_down.weight");
  EXPECT_EQ(hf_to_gguf_name("model.layers.x.mlp.down_proj.weight"), "");
  EXPECT_EQ(hf_to_gguf_name("model.layers.01.mlp.down_proj.weight"), "");
  EXPECT_EQ(hf_to_gguf_name("vision_tower.weight"), "");
}

TEST(HfCheckpoint, ShardedIndexLoadsEachShardOnce) {
  // Split stories260K-hf's tensors over two shards by hand.
  const std::string dir = scratch_dir("sharded");
  const std::string src = read_file(kStoriesHf + "/model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(src[i]);
  const auto header = nlohmann::json::parse(src.substr(8, n));
  const std::string data = src.substr(8 + n);
  nlohmann::json h[2] = {nlohmann::json::object(), nlohmann::json::object()};
  std::string d[2];
  nlohmann::json weight_map = nlohmann::json::object();
  int k = 0;
  for (const auto& [name, e] : header.items()) {
    if (name == "__metadata__") continue;
    const int s = (k++) % 2;
    const uint64_t b = e["data_offsets"][0], end = e["data_offsets"][1];
    nlohmann::json e2 = e;
    e2["data_offsets"] = {d[s].size(), d[s].size() + (end - b)};
    d[s] += data.substr(b, end - b);
    h[s][name] = e2;
    weight_map[name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  for (int s = 0; s < 2; ++s)
    write_file(dir + "/model-0000" + std::to_string(s + 1) + "-of-00002.safetensors",
               safetensors_bytes(h[s].dump(), d[s]));
  write_file(dir + "/model.safetensors.index.json",
             nlohmann::json{{"metadata", {{"total_size", data.size()}}}, {"weight_map", weight_map}}
                 .dump());
  std::filesystem::copy_file(kStoriesHf + "/config.json", dir + "/config.json");

  const ModelFile sharded = load_hf_checkpoint(dir);
  const ModelFile whole = load_hf_checkpoint(kStoriesHf);
  EXPECT_EQ(sharded.mappings.size(), 2u);
  ASSERT_EQ(sharded.tensors.size(), whole.tensors.size());
  for (const auto& [name, t] : whole.tensors) {
    const TensorView& s = sharded.get(name);
    ASSERT_EQ(s.nbytes, t.nbytes) << name;
    EXPECT_EQ(std::memcmp(s.data, t.data, t.nbytes), 0) << name;
  }

  // A shard the index names but the directory lacks.
  std::filesystem::remove(dir + "/model-00002-of-00002.safetensors");
  try {
    load_hf_checkpoint(dir);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model-00002-of-00002.safetensors"), std::string::npos)
        << e.what();
  }
}

TEST(HfCheckpoint, ConfigVariants) {
  auto cfg = tiny_config();
  cfg["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
  cfg["eos_token_id"] = {128001, 128008, 128009};
  cfg["bos_token_id"] = 128000;
  cfg["head_dim"] = 16;
  ModelFile m = load_hf_checkpoint(write_checkpoint("variants", cfg, tiny_tensors()));
  EXPECT_EQ(m.config.rope_scaling.kind, RopeScaling::Kind::Llama3);
  EXPECT_FLOAT_EQ(m.config.rope_scaling.factor, 8.0f);
  EXPECT_FLOAT_EQ(m.config.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(m.config.rope_scaling.original_max_position, 8192);
  EXPECT_EQ(m.config.eos_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(m.config.bos_id, 128000);
  EXPECT_EQ(m.config.n_kv_heads, 1);

  cfg = tiny_config();
  cfg["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  cfg.erase("num_key_value_heads");  // defaults to the head count
  auto tensors = tiny_tensors();
  tensors[6].shape = {32, 32};  // k_proj: 2 KV heads
  tensors[7].shape = {32, 32};
  m = load_hf_checkpoint(write_checkpoint("linear", cfg, tensors));
  EXPECT_EQ(m.config.rope_scaling.kind, RopeScaling::Kind::Linear);
  EXPECT_FLOAT_EQ(m.config.rope_scaling.factor, 2.0f);
  EXPECT_EQ(m.config.n_kv_heads, 2);

  // Qwen2 always has q/k/v biases (and no o_proj bias).
  cfg = tiny_config();
  cfg["architectures"] = {"Qwen2ForCausalLM"};
  tensors = tiny_tensors();
  tensors.push_back({"model.layers.0.self_attn.q_proj.bias", "F32", {32}, {}});
  tensors.push_back({"model.layers.0.self_attn.k_proj.bias", "F32", {16}, {}});
  tensors.push_back({"model.layers.0.self_attn.v_proj.bias", "F32", {16}, {}});
  m = load_hf_checkpoint(write_checkpoint("qwen2", cfg, tensors));
  EXPECT_TRUE(m.config.attn_bias);
  EXPECT_EQ(m.get("blk.0.attn_k.bias").shape, (std::vector<int64_t>{16}));
}

// Quantizable: 2-D with rows of whole 32-blocks. stories260K's ffn_down rows
// have 172 elements, so it keeps F32; the tied embedding is the classifier and
// is quantized too.
TEST(HfCheckpoint, QuantizeWeightsAtLoad) {
  ModelFile m = load_hf_checkpoint(kStoriesHf);
  const ModelFile ref = load_hf_checkpoint(kStoriesHf);
  quantize_weights(m, DType::Q8_0);
  EXPECT_EQ(m.get("token_embd.weight").type, DType::Q8_0);
  EXPECT_EQ(m.get("blk.0.attn_q.weight").type, DType::Q8_0);
  EXPECT_EQ(m.get("blk.0.ffn_gate.weight").type, DType::Q8_0);
  EXPECT_EQ(m.get("blk.0.ffn_down.weight").type, DType::F32);
  EXPECT_EQ(m.get("blk.0.attn_norm.weight").type, DType::F32);
  const TensorView& q = m.get("blk.1.attn_v.weight");
  EXPECT_EQ(q.nbytes, 32u * 2u * 34u);  // 32 rows of 64 = 2 blocks of 34 bytes
  // Q8_0 error per element: half a step d/2 (d = amax/127) from rounding, plus
  // |q| <= 127 times the f16 rounding of d (relative 2^-11): d * (0.5 + 127/2048) < 0.57 d.
  const TensorView& f = ref.get("blk.1.attn_v.weight");
  std::vector<float> a(64), b(64);
  for (int64_t r = 0; r < q.rows(); ++r) {
    kernels::dequantize_row(DType::Q8_0, q.data + r * 68, a.data(), 64);
    kernels::dequantize_row(DType::F32, f.data + r * 256, b.data(), 64);
    for (int blk = 0; blk < 2; ++blk) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(b[blk * 32 + j]));
      for (int j = 0; j < 32; ++j)
        EXPECT_LE(std::fabs(a[blk * 32 + j] - b[blk * 32 + j]), amax / 127 * 0.57f + 1e-9f);
    }
  }
}

}  // namespace
}  // namespace nucleus
