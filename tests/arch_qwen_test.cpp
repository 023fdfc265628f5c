// Qwen2 / Qwen3 / Mistral architectures: config and GGUF form, conversion
// and the engine's invariances with q/k biases and per-head q/k norms.
// The numeric reference (an independent numpy forward from transformers'
// formulas) is tests/qwen_numpy_test.py; here: HF directory == converted
// GGUF, bit-identity across batch / threads / prefill vs decode, and
// llama.cpp's metadata key names.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "formats/gguf.h"
#include "formats/gguf_convert.h"
#include "formats/gguf_writer.h"
#include "formats/hf_checkpoint.h"
#include "hf_test_util.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "util/error.h"

namespace nucleus {
namespace {

using namespace hftest;

// Deterministic values in [-scale, scale) (a 64-bit LCG).
std::vector<float> values(int64_t n, uint64_t seed, float scale, float offset = 0.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = offset + scale * (static_cast<float>(s >> 40) / 8388608.0f - 1.0f);
  }
  return v;
}

// A tiny Qwen3: hidden 32, 4 heads of 16 (q width 64 != hidden), 2 KV heads,
// FFN 48, vocab 40, 2 layers, tied embeddings, q_norm / k_norm per layer.
std::string write_qwen3(const std::string& name) {
  nlohmann::json cfg = {{"architectures", {"Qwen3ForCausalLM"}},
                        {"hidden_size", 32},
                        {"intermediate_size", 48},
                        {"num_hidden_layers", 2},
                        {"num_attention_heads", 4},
                        {"num_key_value_heads", 2},
                        {"head_dim", 16},
                        {"vocab_size", 40},
                        {"max_position_embeddings", 64},
                        {"rms_norm_eps", 1e-6},
                        {"rope_theta", 1000000.0},
                        {"tie_word_embeddings", true}};
  std::vector<StTensor> t;
  uint64_t seed = 1;
  auto add = [&](const std::string& n, std::vector<int64_t> shape, float scale, float off = 0) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    t.push_back({n, "F32", shape, values(count, seed++, scale, off)});
  };
  add("model.embed_tokens.weight", {40, 32}, 1.0f);
  add("model.norm.weight", {32}, 0.1f, 1.0f);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {32}, 0.1f, 1.0f);
    add(p + "post_attention_layernorm.weight", {32}, 0.1f, 1.0f);
    add(p + "self_attn.q_proj.weight", {64, 32}, 0.3f);
    add(p + "self_attn.k_proj.weight", {32, 32}, 0.3f);
    add(p + "self_attn.v_proj.weight", {32, 32}, 0.3f);
    add(p + "self_attn.o_proj.weight", {32, 64}, 0.3f);
    add(p + "self_attn.q_norm.weight", {16}, 0.4f, 1.0f);
    add(p + "self_attn.k_norm.weight", {16}, 0.4f, 1.0f);
    add(p + "mlp.gate_proj.weight", {48, 32}, 0.3f);
    add(p + "mlp.up_proj.weight", {48, 32}, 0.3f);
    add(p + "mlp.down_proj.weight", {32, 48}, 0.3f);
  }
  return write_checkpoint(name, cfg, t);
}

std::shared_ptr<const Model> load(ModelFile f) {
  return std::make_shared<const Model>(std::make_shared<const ModelFile>(std::move(f)));
}

std::vector<float> prefill_all(const std::shared_ptr<const Model>& m,
                               const std::vector<int32_t>& ids, int threads = 1) {
  EngineOptions o;
  o.threads = threads;
  Engine e(m, o);
  std::vector<float> logits;
  e.prefill(e.kv().create(), ids, logits, /*all_positions=*/true);
  return logits;
}

const std::vector<int32_t> kPrompt = {3, 17, 5, 39, 11, 0, 22, 8, 30};

TEST(Qwen3, HfConfigAndTensors) {
  const ModelFile f = load_hf_checkpoint(write_qwen3("qwen3cfg"));
  EXPECT_EQ(f.config.arch, "qwen3");
  EXPECT_TRUE(f.config.qk_norm);
  EXPECT_FALSE(f.config.attn_bias);
  EXPECT_TRUE(f.config.tied_embeddings);
  EXPECT_EQ(f.config.head_dim, 16);
  EXPECT_EQ(f.config.q_dim(), 64);
  EXPECT_EQ(f.config.rope_layout, RopeLayout::Half);
  EXPECT_EQ(f.get("blk.1.attn_k_norm.weight").shape, (std::vector<int64_t>{16}));
}

// A Qwen3 layer's tensors for hidden h, one head of head_dim d, FFN f.
std::vector<StTensor> qwen3_layer_tensors(int64_t h, int64_t d, int64_t f, int64_t k_norm) {
  std::vector<StTensor> t = {{"model.embed_tokens.weight", "F32", {8, h}, {}},
                             {"model.norm.weight", "F32", {h}, {}},
                             {"lm_head.weight", "F32", {8, h}, {}}};
  const std::string p = "model.layers.0.";
  const std::vector<std::pair<std::string, std::vector<int64_t>>> layer = {
      {"input_layernorm.weight", {h}},     {"post_attention_layernorm.weight", {h}},
      {"self_attn.q_proj.weight", {d, h}}, {"self_attn.k_proj.weight", {d, h}},
      {"self_attn.v_proj.weight", {d, h}}, {"self_attn.o_proj.weight", {h, d}},
      {"self_attn.q_norm.weight", {d}},    {"self_attn.k_norm.weight", {k_norm}},
      {"mlp.gate_proj.weight", {f, h}},    {"mlp.up_proj.weight", {f, h}},
      {"mlp.down_proj.weight", {h, f}}};
  for (const auto& [n, shape] : layer) t.push_back({p + n, "F32", shape, {}});
  return t;
}

TEST(Qwen3, HfDefaultsAndRefusals) {
  // transformers' Qwen3Config defaults head_dim to 128, not hidden / heads.
  nlohmann::json cfg = {{"architectures", {"Qwen3ForCausalLM"}},
                        {"hidden_size", 32},
                        {"intermediate_size", 16},
                        {"num_hidden_layers", 1},
                        {"num_attention_heads", 1},
                        {"vocab_size", 8}};
  const ModelFile f =
      load_hf_checkpoint(write_checkpoint("qwen3dflt", cfg, qwen3_layer_tensors(32, 128, 16, 128)));
  EXPECT_EQ(f.config.head_dim, 128);
  EXPECT_EQ(f.config.context_length, 32768);
  EXPECT_EQ(f.config.n_kv_heads, 1);
  // A k_norm of the wrong size is named with its HF name.
  try {
    load_hf_checkpoint(write_checkpoint("qwen3bad", cfg, qwen3_layer_tensors(32, 128, 16, 64)));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("self_attn.k_norm.weight"), std::string::npos) << e.what();
  }
  cfg["use_sliding_window"] = true;
  try {
    load_hf_checkpoint(write_checkpoint("qwen3swa", cfg, qwen3_layer_tensors(32, 128, 16, 128)));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use_sliding_window"), std::string::npos) << e.what();
  }
}

TEST(Qwen3, ConvertedGgufGivesTheSameLogits) {
  const ModelFile hf = load_hf_checkpoint(write_qwen3("qwen3conv"));
  const std::string out = scratch_dir("qwen3convout") + "/q3.gguf";
  write_gguf(hf, out, {});
  const GgufFile g(out);
  EXPECT_EQ(g.get_string("general.architecture"), "qwen3");
  EXPECT_EQ(g.get_int("qwen3.attention.key_length"), 16);
  EXPECT_EQ(g.get_int("qwen3.rope.dimension_count"), 16);
  std::set<std::string> names;
  for (const GgufTensorInfo& t : g.tensor_infos()) names.insert(t.name);
  EXPECT_TRUE(names.contains("blk.0.attn_q_norm.weight"));
  EXPECT_TRUE(names.contains("blk.1.attn_k_norm.weight"));
  EXPECT_FALSE(names.contains("output.weight"));  // tied: llama.cpp reads token_embd

  ModelFile gf = read_gguf(out);
  EXPECT_EQ(gf.config.arch, "qwen3");
  EXPECT_TRUE(gf.config.qk_norm);
  EXPECT_TRUE(gf.config.tied_embeddings);
  EXPECT_EQ(gf.config.rope_layout, RopeLayout::Half);
  EXPECT_EQ(gf.config.head_dim, 16);
  const auto a = prefill_all(load(load_hf_checkpoint(write_qwen3("qwen3conv2"))), kPrompt);
  const auto b = prefill_all(load(std::move(gf)), kPrompt);
  ASSERT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, 1e-4f);
  // Nothing is permuted or re-rounded, so the two are in fact identical.
  EXPECT_EQ(a, b);
}

// The engine's invariances hold with per-head q/k norms: every logit is the
// same bit for bit whether the prompt is one batch or fed token by token,
// alone or beside another sequence, on 1 or 2 threads.
TEST(Qwen3, ForwardIsBatchAndThreadInvariant) {
  const auto m = load(load_hf_checkpoint(write_qwen3("qwen3inv")));
  const int64_t vocab = m->config().vocab_size;
  const auto whole = prefill_all(m, kPrompt);
  EXPECT_EQ(prefill_all(m, kPrompt, 2), whole);

  Engine e(m, {});
  const int32_t a = e.kv().create(), b = e.kv().create();
  std::vector<float> logits;
  for (size_t i = 0; i < kPrompt.size(); ++i) {
    Batch batch;
    batch.add(b, kPrompt[(i + 4) % kPrompt.size()], true);  // another sequence in the batch
    batch.add(a, kPrompt[i], true);
    e.forward(batch, logits);
    ASSERT_EQ(logits.size(), static_cast<size_t>(2 * vocab));
    for (int64_t j = 0; j < vocab; ++j)
      ASSERT_EQ(logits[static_cast<size_t>(vocab + j)],
                whole[static_cast<size_t>(static_cast<int64_t>(i) * vocab + j)])
          << "position " << i << " token " << j;
  }
}

// Qwen2 in llama.cpp's layout: a GGUF "qwen2" file with q/k/v biases and
// rotate-half rows runs like the HF directory it was converted from.
TEST(Qwen2, GgufFromHfMatches) {
  auto cfg = tiny_config();
  cfg["architectures"] = {"Qwen2ForCausalLM"};
  auto tensors = tiny_tensors();
  uint64_t seed = 100;
  for (StTensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const bool norm = t.shape.size() == 1;
    t.values = values(n, seed++, norm ? 0.1f : 0.4f, norm ? 1.0f : 0.0f);
  }
  tensors.push_back({"model.layers.0.self_attn.q_proj.bias", "F32", {32}, values(32, 7, 0.5f)});
  tensors.push_back({"model.layers.0.self_attn.k_proj.bias", "F32", {16}, values(16, 8, 0.5f)});
  tensors.push_back({"model.layers.0.self_attn.v_proj.bias", "F32", {16}, values(16, 9, 0.5f)});
  const std::string dir = write_checkpoint("qwen2eng", cfg, tensors);
  const std::string out = scratch_dir("qwen2engout") + "/q2.gguf";
  write_gguf(load_hf_checkpoint(dir), out, {});
  const std::vector<int32_t> ids = {1, 5, 2, 7, 3};
  EXPECT_EQ(prefill_all(load(read_gguf(out)), ids),
            prefill_all(load(load_hf_checkpoint(dir)), ids));
}

// The `<arch>.*` keys the writer emits are llama.cpp's (gguf-py
// constants.py, Keys.LLM / Keys.Attention / Keys.Rope, "{arch}." templates),
// and it emits every `llama.*` key of llama.cpp's own stories260K.gguf.
TEST(GgufKeys, LlamaCppNames) {
  const std::set<std::string> known = {"vocab_size",
                                       "context_length",
                                       "embedding_length",
                                       "block_count",
                                       "feed_forward_length",
                                       "attention.head_count",
                                       "attention.head_count_kv",
                                       "attention.key_length",
                                       "attention.value_length",
                                       "attention.layer_norm_rms_epsilon",
                                       "rope.dimension_count",
                                       "rope.freq_base",
                                       "rope.scaling.type",
                                       "rope.scaling.factor"};
  const std::string ref_path = std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf";
  const GgufFile ref(ref_path);
  std::set<std::string> ref_keys;
  for (const auto& [k, v] : ref.metadata())
    if (k.rfind("llama.", 0) == 0) ref_keys.insert(k.substr(6));
  EXPECT_GE(ref_keys.size(), 7u);
  for (const std::string& k : ref_keys) EXPECT_TRUE(known.contains(k)) << k;

  ModelFile src = read_gguf(ref_path);
  for (const char* arch : {"llama", "mistral", "qwen2", "qwen3"}) {
    SCOPED_TRACE(arch);
    src.config.arch = arch;
    src.config.rope_layout = gguf_rope_layout(arch);
    src.config.rope_scaling.kind = RopeScaling::Kind::Linear;
    src.config.rope_scaling.factor = 2.0f;
    const std::string out = scratch_dir(std::string("keys_") + arch) + "/k.gguf";
    write_gguf(src, out, {});
    const GgufFile g(out);
    EXPECT_EQ(g.get_string("general.architecture"), arch);
    const std::string prefix = std::string(arch) + ".";
    std::set<std::string> ours;
    for (const auto& [k, v] : g.metadata()) {
      if (k.rfind("general.", 0) == 0 || k.rfind("tokenizer.", 0) == 0) continue;
      ASSERT_EQ(k.rfind(prefix, 0), 0u) << k;
      ours.insert(k.substr(prefix.size()));
    }
    for (const std::string& k : ours) EXPECT_TRUE(known.contains(k)) << k;
    for (const std::string& k : ref_keys) EXPECT_TRUE(ours.contains(k)) << k;
    EXPECT_TRUE(ours.contains("rope.scaling.type"));
  }
}

TEST(GgufArch, UnknownArchitectureIsOneLineError) {
  GgufWriter w;
  w.add_string("general.architecture", "gemma");
  const std::string out = scratch_dir("gemma") + "/g.gguf";
  w.begin(out);
  w.finish();
  try {
    read_gguf(out);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'gemma' is not supported"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  EXPECT_EQ(gguf_rope_layout("mistral"), RopeLayout::Interleaved);
  EXPECT_EQ(gguf_rope_layout("llama"), RopeLayout::Interleaved);
  EXPECT_EQ(gguf_rope_layout("qwen2"), RopeLayout::Half);
  EXPECT_EQ(gguf_rope_layout("qwen3"), RopeLayout::Half);
}

}  // namespace
}  // namespace nucleus
