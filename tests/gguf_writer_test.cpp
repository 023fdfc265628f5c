// GGUF writing and conversion. References: stories260K.gguf (the original
// ggml-org file; stories260K-hf is the same model re-saved by transformers),
// ggml's Q8_0/Q4_0 block definitions worked by hand, and the GGUF reader of
// formats/gguf.h for reading our files back.
#include "formats/gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "formats/gguf.h"
#include "formats/gguf_convert.h"
#include "formats/hf_checkpoint.h"
#include "formats/hf_vocab.h"
#include "formats/random_normal.h"
#include "hf_test_util.h"
#include "kernels/dtype.h"
#include "kernels/ops.h"
#include "util/error.h"

namespace nucleus {
namespace {

using namespace hftest;

const std::string kStoriesHf = std::string(NUCLEUS_TEST_DATA) + "/hf/stories260K-hf";
const std::string kStas = std::string(NUCLEUS_TEST_DATA) + "/hf/stas-tiny-random-llama-2";
const std::string kStoriesGguf = std::string(NUCLEUS_MODELS_DIR) + "/stories260K.gguf";

ModelFile stories_hf_with_vocab() {
  ModelFile m = load_hf_checkpoint(kStoriesHf);
  m.vocab = read_spm_vocab_from_tokenizer_json(kStoriesHf + "/tokenizer.json",
                                               kStoriesHf + "/tokenizer_config.json");
  return m;
}

TEST(GgufWriter, Stories260KF32BitIdenticalToOriginal) {
  const std::string out = scratch_dir("f32") + "/stories.gguf";
  GgufConvertOptions opt;
  opt.type = DType::F32;
  write_gguf(stories_hf_with_vocab(), out, opt);

  const GgufFile ours(out);
  const GgufFile ref(kStoriesGguf);
  EXPECT_EQ(ours.version(), 3u);
  EXPECT_EQ(ours.data_offset() % 32, 0u);
  // The original stores the tied classifier; we follow llama.cpp's converter
  // and omit it, so everything else must match exactly.
  ASSERT_EQ(ours.tensor_infos().size() + 1, ref.tensor_infos().size());
  for (const GgufTensorInfo& info : ours.tensor_infos()) {
    SCOPED_TRACE(info.name);
    EXPECT_EQ(info.offset % 32, 0u);
    const GgufTensorInfo* r = nullptr;
    for (const GgufTensorInfo& x : ref.tensor_infos())
      if (x.name == info.name) r = &x;
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(info.shape, r->shape);
    EXPECT_EQ(info.ggml_type, r->ggml_type);
    const TensorView a = ours.view(info);
    const TensorView b = ref.view(*r);
    ASSERT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0);
  }

  // Tokenizer metadata as llama.cpp wrote it for the original.
  EXPECT_EQ(ours.get_string("tokenizer.ggml.model"), ref.get_string("tokenizer.ggml.model"));
  EXPECT_EQ(ours.get_string_array("tokenizer.ggml.tokens"),
            ref.get_string_array("tokenizer.ggml.tokens"));
  const auto s1 = ours.get_float_array("tokenizer.ggml.scores");
  const auto s2 = ref.get_float_array("tokenizer.ggml.scores");
  ASSERT_EQ(s1.size(), s2.size());
  EXPECT_EQ(std::memcmp(s1.data(), s2.data(), s1.size() * 4), 0);  // incl. the sign of -0.0
  EXPECT_EQ(ours.get_int_array("tokenizer.ggml.token_type"),
            ref.get_int_array("tokenizer.ggml.token_type"));
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id"})
    EXPECT_EQ(ours.get_int(key), ref.get_int(key)) << key;
  for (const char* key : {"llama.embedding_length", "llama.feed_forward_length",
                          "llama.block_count", "llama.attention.head_count",
                          "llama.attention.head_count_kv", "llama.rope.dimension_count"})
    EXPECT_EQ(ours.get_int(key), ref.get_int(key)) << key;
  EXPECT_EQ(ours.get_float("llama.attention.layer_norm_rms_epsilon"),
            ref.get_float("llama.attention.layer_norm_rms_epsilon"));
  EXPECT_EQ(ours.get_string("general.architecture"), "llama");
  EXPECT_EQ(ours.get_int("general.file_type"), 0);
  EXPECT_EQ(ours.get_int("llama.context_length"), 512);  // config.json's max_position_embeddings
  EXPECT_TRUE(ours.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_FALSE(ours.get_bool("tokenizer.ggml.add_eos_token"));

  // And the file loads as a model through the reader.
  const ModelFile m = read_gguf(out);
  EXPECT_EQ(m.config.vocab_size, 512);
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_EQ(m.config.rope_layout, RopeLayout::Interleaved);
}

// Rows chosen so ggml's block rules can be worked by hand:
// x_j = j/2 - 8 for j = 0..31 (amax 8 at j = 0, the signed extreme is -8).
std::vector<float> hand_row() {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>(j) - 8.0f;
  return x;
}

// A minimal model holding one 2-row matrix [32, 2] (row 1 all zeros) and one
// 1-D tensor, enough for write_gguf.
ModelFile hand_model(std::vector<float>& storage) {
  storage = hand_row();
  storage.resize(64, 0.0f);
  ModelFile m;
  m.config.dim = 32;
  m.config.n_layers = 1;
  m.config.n_heads = 1;
  m.config.n_kv_heads = 1;
  m.config.head_dim = 32;
  m.config.ffn_dim = 32;
  m.config.vocab_size = 2;
  m.config.context_length = 16;
  m.config.tied_embeddings = true;
  TensorView t;
  t.name = "token_embd.weight";
  t.type = DType::F32;
  t.shape = {32, 2};
  t.data = reinterpret_cast<const uint8_t*>(storage.data());
  t.nbytes = 64 * 4;
  m.tensors[t.name] = t;
  TensorView n = t;
  n.name = "output_norm.weight";
  n.shape = {32};
  n.nbytes = 32 * 4;
  m.tensors[n.name] = n;
  return m;
}

TEST(GgufWriter, Q8_0BlockByHand) {
  std::vector<float> storage;
  const ModelFile m = hand_model(storage);
  const std::string out = scratch_dir("q8") + "/q8.gguf";
  GgufConvertOptions opt;
  opt.type = DType::Q8_0;
  write_gguf(m, out, opt);
  const GgufFile g(out);
  EXPECT_EQ(g.get_int("general.file_type"), 7);  // LLAMA_FTYPE_MOSTLY_Q8_0
  ASSERT_EQ(g.tensor_infos().size(), 2u);
  const TensorView e = g.view(g.tensor_infos()[0]);
  ASSERT_EQ(e.type, DType::Q8_0);
  ASSERT_EQ(e.nbytes, 2u * 34u);
  EXPECT_EQ(g.view(g.tensor_infos()[1]).type, DType::F32);  // the norm
  // d = amax/127 = 8/127 = 0.0629921; as f16: 0.0629921 = 1.00787 * 2^-4,
  // mantissa 0.00787 * 1024 = 8.06 -> 8: exponent 15-4 = 11 -> 0x2C00 | 8 = 0x2C08.
  uint16_t d;
  std::memcpy(&d, e.data, 2);
  EXPECT_EQ(d, 0x2C08);
  // q_j = round(x_j * 127/8) = round(15.875 * x_j):
  // j=0: -8 -> -127; j=1: -7.5 -> -119.06 -> -119; j=15: -0.5 -> -7.94 -> -8;
  // j=16: 0 -> 0; j=17: 0.5 -> 7.94 -> 8; j=31: 7.5 -> 119.06 -> 119.
  const auto* q = reinterpret_cast<const int8_t*>(e.data + 2);
  EXPECT_EQ(q[0], -127);
  EXPECT_EQ(q[1], -119);
  EXPECT_EQ(q[15], -8);
  EXPECT_EQ(q[16], 0);
  EXPECT_EQ(q[17], 8);
  EXPECT_EQ(q[31], 119);
  // The all-zero row: d = 0 and every q = 0.
  for (int i = 34; i < 68; ++i) EXPECT_EQ(e.data[i], 0) << i;
}

TEST(GgufWriter, Q4_0BlockByHand) {
  std::vector<float> storage;
  const ModelFile m = hand_model(storage);
  const std::string out = scratch_dir("q4") + "/q4.gguf";
  GgufConvertOptions opt;
  opt.type = DType::Q4_0;
  write_gguf(m, out, opt);
  const GgufFile g(out);
  EXPECT_EQ(g.get_int("general.file_type"), 2);  // LLAMA_FTYPE_MOSTLY_Q4_0
  const TensorView e = g.view(g.tensor_infos()[0]);
  ASSERT_EQ(e.type, DType::Q4_0);
  ASSERT_EQ(e.nbytes, 2u * 18u);
  // The signed value of largest magnitude is -8, so d = -8 / -8 = 1.0 (f16 0x3C00)
  // and q_j = min(15, trunc(x_j / 1 + 8.5)) = min(15, trunc(j/2 + 0.5)).
  uint16_t d;
  std::memcpy(&d, e.data, 2);
  EXPECT_EQ(d, 0x3C00);
  // Byte k holds q_k (low nibble) and q_{k+16} (high nibble):
  // q_k = trunc(k/2 + 0.5) = (k+1)/2 for k < 16; q_{k+16} = min(15, (k+17)/2).
  const uint8_t* qs = e.data + 2;
  EXPECT_EQ(qs[0], 0x80);   // q0 = 0, q16 = 8
  EXPECT_EQ(qs[1], 0x91);   // q1 = 1, q17 = 9
  EXPECT_EQ(qs[2], 0x91);   // q2 = trunc(1.5) = 1, q18 = trunc(9.5) = 9
  EXPECT_EQ(qs[13], 0xF7);  // q13 = 7, q29 = 15
  EXPECT_EQ(qs[14], 0xF7);  // q14 = trunc(7.5) = 7, q30 = min(15, trunc(15.5)) = 15
  EXPECT_EQ(qs[15], 0xF8);  // q15 = 8, q31 = min(15, 16) = 15
  for (int k = 0; k < 16; ++k) {
    const int lo = (k + 1) / 2, hi = std::min(15, (k + 17) / 2);
    EXPECT_EQ(qs[k], lo | (hi << 4)) << k;
  }
  // The zero row: d = 0 and q = trunc(0 + 8.5) = 8 in both nibbles.
  for (int k = 0; k < 16; ++k) EXPECT_EQ(e.data[18 + 2 + k], 0x88) << k;
}

TEST(GgufWriter, QuantizedConversionsOfStories) {
  const ModelFile hf = stories_hf_with_vocab();
  const ModelFile ref = read_gguf(kStoriesGguf);
  for (DType type : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(dtype_name(type));
    const std::string out = scratch_dir("conv") + "/s.gguf";
    GgufConvertOptions opt;
    opt.type = type;
    opt.threads = 2;
    write_gguf(hf, out, opt);
    const ModelFile m = read_gguf(out);
    EXPECT_EQ(m.get("blk.0.attn_q.weight").type, type);
    EXPECT_EQ(m.get("token_embd.weight").type, type);
    EXPECT_EQ(m.get("blk.0.attn_norm.weight").type, DType::F32);
    // Rows of 172 elements do not fit 32-blocks: the source's F32 is kept.
    const bool blocks = type == DType::Q8_0 || type == DType::Q4_0;
    EXPECT_EQ(m.get("blk.0.ffn_down.weight").type, blocks ? DType::F32 : type);
    // Each converted row equals quantize_row of the original GGUF's row
    // (whose Q/K are already interleaved) — so the permutation is right too.
    for (const char* name : {"blk.3.attn_q.weight", "blk.3.attn_k.weight", "blk.1.ffn_up.weight"}) {
      const TensorView& a = m.get(name);
      const TensorView& r = ref.get(name);
      std::vector<float> row(static_cast<size_t>(r.cols()));
      std::vector<uint8_t> want(row_bytes(type, r.cols()));
      const size_t rb = row_bytes(type, r.cols());
      for (int64_t i = 0; i < r.rows(); ++i) {
        kernels::dequantize_row(DType::F32, r.data + i * r.cols() * 4, row.data(), r.cols());
        kernels::quantize_row(type, row.data(), want.data(), r.cols());
        ASSERT_EQ(std::memcmp(a.data + i * rb, want.data(), rb), 0) << name << " row " << i;
      }
    }
    // Requantizing the original GGUF gives the same file contents per tensor.
    const std::string rq = scratch_dir("rq") + "/rq.gguf";
    requantize_gguf(kStoriesGguf, rq, opt);
    const ModelFile q = read_gguf(rq);
    for (const auto& [name, t] : m.tensors) {
      const TensorView& u = q.get(name);
      ASSERT_EQ(u.type, t.type) << name;
      ASSERT_EQ(u.nbytes, t.nbytes) << name;
      EXPECT_EQ(std::memcmp(u.data, t.data, t.nbytes), 0) << name;
    }
    // ... keeping the original's metadata (its tied output.weight included).
    const GgufFile qg(rq);
    EXPECT_EQ(qg.get_int("llama.context_length"), 2048);
    EXPECT_EQ(qg.get_int("general.file_type"), static_cast<int64_t>(gguf_file_type(type)));
    EXPECT_NE(q.find("output.weight"), nullptr);
  }
}

TEST(GgufWriter, Bf16CheckpointConvertsExactly) {
  // stas/tiny-random-llama-2 is BF16 with hidden 16 (rows too short for
  // blocks): to BF16 every matrix is copied or just permuted, bit for bit.
  const ModelFile hf = load_hf_checkpoint(kStas);
  const std::string out = scratch_dir("stas") + "/stas.gguf";
  GgufConvertOptions opt;
  opt.type = DType::Q8_0;
  write_gguf(hf, out, opt);
  const ModelFile m = read_gguf(out);
  EXPECT_EQ(m.config.dim, 16);
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_EQ(m.get("output.weight").type, DType::BF16);  // rows of 16: kept
  EXPECT_EQ(m.get("output_norm.weight").type, DType::F32);
  const TensorView& a = m.get("output.weight");
  const TensorView& b = hf.get("output.weight");
  ASSERT_EQ(a.nbytes, b.nbytes);
  EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0);
  // Q row 2i+j of head h comes from HF row h*4 + j*2 + i (head_dim 4).
  const TensorView& q = m.get("blk.1.attn_q.weight");
  const TensorView& hq = hf.get("blk.1.attn_q.weight");
  const size_t rb = 16 * 2;
  for (int64_t r = 0; r < 16; ++r) {
    const int64_t h = r / 4, w = r % 4, src = h * 4 + (w % 2) * 2 + w / 2;
    EXPECT_EQ(std::memcmp(q.data + r * rb, hq.data + src * rb, rb), 0) << r;
  }
}

TEST(GgufWriter, MetadataOfAllTypesRoundTrips) {
  const std::string out = scratch_dir("meta") + "/m.gguf";
  const uint16_t b[10] = {0x3C00, 0, 0, 0, 0, 0, 0, 0, 0, 0x4000};
  {
    GgufWriter w;
    w.add_u8("t.u8", 200);
    w.add_i8("t.i8", -100);
    w.add_u16("t.u16", 60000);
    w.add_i16("t.i16", -30000);
    w.add_u32("t.u32", 4000000000u);
    w.add_i32("t.i32", -2000000000);
    w.add_f32("t.f32", 1.5f);
    w.add_bool("t.bool", true);
    w.add_string("t.str", "h\xc3\xa9llo");
    w.add_u64("t.u64", 1ULL << 40);
    w.add_i64("t.i64", -(1LL << 40));
    w.add_f64("t.f64", 0.1);
    w.add_string_array("t.strs", {"a", "", "ccc"});
    w.add_f32_array("t.f32s", {1.0f, -2.0f});
    w.add_i32_array("t.i32s", {-1, 7});
    w.add_u32_array("t.u32s", {3});
    EXPECT_THROW(w.add_u8("t.u8", 1), Error);
    w.add_tensor("a", DType::F32, {3});
    w.add_tensor("b", DType::F16, {5, 2});
    w.begin(out);
    const float a[3] = {1, 2, 3};
    w.write(a, sizeof a);
    w.write(b, 7);  // in pieces
    w.write(reinterpret_cast<const uint8_t*>(b) + 7, 13);
    w.finish();
  }
  const GgufFile g(out);
  EXPECT_EQ(g.get_int("t.u8"), 200);
  EXPECT_EQ(g.get_int("t.i8"), -100);
  EXPECT_EQ(g.get_int("t.u16"), 60000);
  EXPECT_EQ(g.get_int("t.i16"), -30000);
  EXPECT_EQ(g.get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(g.get_int("t.i32"), -2000000000);
  EXPECT_EQ(g.get_float("t.f32"), 1.5);
  EXPECT_TRUE(g.get_bool("t.bool"));
  EXPECT_EQ(g.get_string("t.str"), "h\xc3\xa9llo");
  EXPECT_EQ(g.get_int("t.u64"), 1LL << 40);
  EXPECT_EQ(g.get_int("t.i64"), -(1LL << 40));
  EXPECT_EQ(g.get_float("t.f64"), 0.1);
  EXPECT_EQ(g.get_string_array("t.strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(g.get_float_array("t.f32s"), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(g.get_int_array("t.i32s"), (std::vector<int64_t>{-1, 7}));
  EXPECT_EQ(g.get_int_array("t.u32s"), (std::vector<int64_t>{3}));
  ASSERT_EQ(g.tensor_infos().size(), 2u);
  EXPECT_EQ(g.tensor_infos()[0].offset, 0u);
  EXPECT_EQ(g.tensor_infos()[1].offset, 32u);  // 12 bytes padded to 32
  const TensorView tb = g.view(g.tensor_infos()[1]);
  EXPECT_EQ(std::memcmp(tb.data, b, 20), 0);
  EXPECT_EQ(std::filesystem::file_size(out), g.data_offset() + 64);

  // Requantize copies every key (types preserved) and replaces file_type.
  const std::string rq = scratch_dir("meta2") + "/m.gguf";
  GgufConvertOptions opt;
  opt.type = DType::F32;
  requantize_gguf(out, rq, opt);
  const GgufFile g2(rq);
  ASSERT_EQ(g2.metadata().size(), g.metadata().size() + 1);
  for (size_t i = 0; i < g.metadata().size(); ++i) {
    EXPECT_EQ(g2.metadata()[i].first, g.metadata()[i].first);
    EXPECT_EQ(g2.metadata()[i].second.to_string(100), g.metadata()[i].second.to_string(100));
    EXPECT_EQ(g2.metadata()[i].second.type, g.metadata()[i].second.type);
  }
  EXPECT_EQ(g2.view(g2.tensor_infos()[1]).type, DType::F32);  // F16 -> F32
}

TEST(GgufWriter, IncompleteOrOverfullDataIsAnError) {
  const std::string dir = scratch_dir("partial");
  {
    GgufWriter w;
    w.add_tensor("a", DType::F32, {4});
    w.begin(dir + "/x.gguf");
    const float a[4] = {};
    w.write(a, 8);
    EXPECT_THROW(w.finish(), Error);
  }
  // Nothing is left behind, not even the partial file.
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf.part"));
  GgufWriter w;
  w.add_tensor("a", DType::F32, {1});
  w.begin(dir + "/y.gguf");
  const float a[2] = {};
  EXPECT_THROW(w.write(a, 8), Error);
  GgufWriter bad;
  EXPECT_THROW(bad.add_tensor("q", DType::Q8_0, {16, 2}), Error);  // 16 is not a whole block
}

TEST(GgufWriter, RandomModelIsDeterministicAndNormal) {
  const RandomModelSpec spec =
      parse_random_spec("dim=64,layers=2,heads=4,kv_heads=2,ffn=96,vocab=300,ctx=128");
  const std::string dir = scratch_dir("random");
  GgufConvertOptions opt;
  opt.type = DType::F32;
  opt.threads = 1;
  write_random_gguf(spec, dir + "/a.gguf", opt, 7, nullptr);
  opt.threads = 2;
  write_random_gguf(spec, dir + "/b.gguf", opt, 7, nullptr);
  write_random_gguf(spec, dir + "/c.gguf", opt, 8, nullptr);
  EXPECT_EQ(read_file(dir + "/a.gguf"), read_file(dir + "/b.gguf"));  // thread count is irrelevant
  EXPECT_NE(read_file(dir + "/a.gguf"), read_file(dir + "/c.gguf"));

  const ModelFile m = read_gguf(dir + "/a.gguf");
  EXPECT_EQ(m.config.dim, 64);
  EXPECT_EQ(m.config.n_layers, 2);
  EXPECT_EQ(m.config.n_kv_heads, 2);
  EXPECT_EQ(m.config.ffn_dim, 96);
  EXPECT_EQ(m.config.vocab_size, 300);
  EXPECT_EQ(m.vocab.size(), 300);
  EXPECT_EQ(m.vocab.tokens[1], "<s>");
  EXPECT_EQ(m.vocab.tokens[3], "<0x00>");
  const TensorView& norm = m.get("blk.1.ffn_norm.weight");
  for (int i = 0; i < 64; ++i) EXPECT_EQ(reinterpret_cast<const float*>(norm.data)[i], 1.0f);
  // token_embd has 19200 N(0, 0.02) samples: the sample mean is within
  // 5 standard errors (5 * 0.02 / sqrt(19200) = 0.00072) of 0 and the standard
  // deviation within 3%.
  const TensorView& e = m.get("token_embd.weight");
  const auto* x = reinterpret_cast<const float*>(e.data);
  double s = 0, s2 = 0;
  const int64_t n = e.numel();
  for (int64_t i = 0; i < n; ++i) s += x[i], s2 += double(x[i]) * x[i];
  const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
  EXPECT_LT(std::fabs(mean), 0.00072);
  EXPECT_NEAR(sd, 0.02, 0.0006);
  // The file's samples (8-wide AVX2 path) equal the scalar definition.
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i)
    mismatches += x[i] != 0.02f * random_normal(7, 0, static_cast<uint64_t>(i));
  EXPECT_EQ(mismatches, 0);
  // And starting mid-stream (odd offset, ragged tail) changes nothing.
  std::vector<float> part(101);
  normal_fill(normal_stream(7, 0), 333, 101, 0.02f, part.data());
  for (int i = 0; i < 101; ++i) EXPECT_EQ(part[i], x[333 + i]) << i;

  // A real vocabulary replaces the synthetic one.
  const Vocab v = read_spm_vocab_from_tokenizer_json(kStoriesHf + "/tokenizer.json", "");
  opt.type = DType::Q8_0;
  write_random_gguf(parse_random_spec("dim=64,layers=1,heads=4,ffn=64,vocab=100,ctx=64"),
                    dir + "/d.gguf", opt, 1, &v);
  const ModelFile d = read_gguf(dir + "/d.gguf");
  EXPECT_EQ(d.config.vocab_size, 512);
  EXPECT_EQ(d.vocab.tokens, v.tokens);
  EXPECT_EQ(d.get("blk.0.ffn_down.weight").type, DType::Q8_0);
}

TEST(GgufWriter, RandomSpecs) {
  const RandomModelSpec t = parse_random_spec("tinyllama-1.1b");
  EXPECT_EQ(t.dim, 2048);
  EXPECT_EQ(t.n_layers, 22);
  EXPECT_EQ(t.n_kv_heads, 4);
  EXPECT_EQ(t.ffn_dim, 5632);
  const RandomModelSpec l3 = parse_random_spec("llama3-8b");
  EXPECT_EQ(l3.vocab_size, 128256);
  EXPECT_EQ(l3.rope_theta, 500000.0f);
  EXPECT_THROW(parse_random_spec("gpt-5"), Error);
  EXPECT_THROW(parse_random_spec("dim=64,layers=x"), Error);
  EXPECT_THROW(parse_random_spec("dim=64,wings=2"), Error);
}

}  // namespace
}  // namespace nucleus

namespace nucleus {
namespace {

using namespace hftest;

// Qwen2: q/k/v biases. llama.cpp runs qwen2 files with NEOX (rotate-half)
// RoPE, so its converter keeps HF's rows: weights and biases are written as
// they are, under general.architecture "qwen2".
TEST(GgufWriter, Qwen2KeepsRotateHalfRowsAndBiases) {
  auto cfg = tiny_config();
  cfg["architectures"] = {"Qwen2ForCausalLM"};
  auto tensors = tiny_tensors();
  std::vector<float> qb(32), kb(16), vb(16);
  for (int i = 0; i < 32; ++i) qb[i] = static_cast<float>(i);
  for (int i = 0; i < 16; ++i)
    kb[i] = 100.0f + static_cast<float>(i), vb[i] = 200.0f + static_cast<float>(i);
  tensors.push_back({"model.layers.0.self_attn.q_proj.bias", "F32", {32}, qb});
  tensors.push_back({"model.layers.0.self_attn.k_proj.bias", "F32", {16}, kb});
  tensors.push_back({"model.layers.0.self_attn.v_proj.bias", "F32", {16}, vb});
  const ModelFile hf = load_hf_checkpoint(write_checkpoint("qwen2conv", cfg, tensors));
  const std::string out = scratch_dir("qwen2out") + "/q.gguf";
  GgufConvertOptions opt;
  write_gguf(hf, out, opt);
  const ModelFile m = read_gguf(out);
  EXPECT_EQ(m.config.arch, "qwen2");
  EXPECT_EQ(m.config.rope_layout, RopeLayout::Half);
  EXPECT_TRUE(m.config.attn_bias);
  const auto* q = reinterpret_cast<const float*>(m.get("blk.0.attn_q.bias").data);
  const auto* k = reinterpret_cast<const float*>(m.get("blk.0.attn_k.bias").data);
  const auto* v = reinterpret_cast<const float*>(m.get("blk.0.attn_v.bias").data);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q[i], static_cast<float>(i));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(k[i], 100.0f + static_cast<float>(i));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(v[i], 200.0f + static_cast<float>(i));
  bool llama_keys = false;
  for (const auto& [key, value] : m.metadata) llama_keys |= key.rfind("llama.", 0) == 0;
  EXPECT_FALSE(llama_keys);
}

// Llama with attention_bias: a llama file is interleaved (llama.cpp's NORM
// rope), so the q and k biases follow their rows' permutation.
TEST(GgufWriter, LlamaBiasesArePermutedWithTheirRows) {
  auto cfg = tiny_config();
  cfg["attention_bias"] = true;
  auto tensors = tiny_tensors();
  std::vector<float> qb(32), kb(16), vb(16);
  for (int i = 0; i < 32; ++i) qb[i] = static_cast<float>(i);
  for (int i = 0; i < 16; ++i)
    kb[i] = 100.0f + static_cast<float>(i), vb[i] = 200.0f + static_cast<float>(i);
  tensors.push_back({"model.layers.0.self_attn.q_proj.bias", "F32", {32}, qb});
  tensors.push_back({"model.layers.0.self_attn.k_proj.bias", "F32", {16}, kb});
  tensors.push_back({"model.layers.0.self_attn.v_proj.bias", "F32", {16}, vb});
  tensors.push_back({"model.layers.0.self_attn.o_proj.bias", "F32", {32}, {}});
  const ModelFile hf = load_hf_checkpoint(write_checkpoint("llamabias", cfg, tensors));
  const std::string out = scratch_dir("llamabiasout") + "/q.gguf";
  GgufConvertOptions opt;
  write_gguf(hf, out, opt);
  const GgufFile g(out);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  auto data = [&](const char* name) {
    for (const GgufTensorInfo& t : g.tensor_infos())
      if (t.name == name) return reinterpret_cast<const float*>(g.view(t).data);
    ADD_FAILURE() << "no tensor " << name;
    return static_cast<const float*>(nullptr);
  };
  const float* q = data("blk.0.attn_q.bias");
  const float* k = data("blk.0.attn_k.bias");
  const float* v = data("blk.0.attn_v.bias");
  ASSERT_TRUE(q && k && v);
  // head_dim 16: element 2i+j of a head comes from HF element j*8 + i.
  // q head 0: 0, 8, 1, 9, ...; head 1 starts at 16: 16, 24, 17, 25, ...
  EXPECT_EQ(q[0], 0.0f);
  EXPECT_EQ(q[1], 8.0f);
  EXPECT_EQ(q[2], 1.0f);
  EXPECT_EQ(q[15], 15.0f);
  EXPECT_EQ(q[16], 16.0f);
  EXPECT_EQ(q[17], 24.0f);
  EXPECT_EQ(k[1], 108.0f);
  EXPECT_EQ(k[14], 107.0f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(v[i], 200.0f + static_cast<float>(i));  // V is not rotated
}

TEST(GgufWriter, ByteLevelVocabulary) {
  const std::string dir = scratch_dir("bytelevel");
  const nlohmann::json tok = {
      {"model",
       {{"type", "BPE"},
        {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"\xc4\xa0", 3}}},
        {"merges", nlohmann::json::array({nlohmann::json::array({"a", "b"})})}}},
      {"added_tokens",
       {{{"id", 4}, {"content", "<|begin_of_text|>"}, {"special", true}},
        {{"id", 5}, {"content", "<tool>"}, {"special", false}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", {{{"type", "ByteLevel"}, {"add_prefix_space", false}}}}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}}};
  write_file(dir + "/tokenizer.json", tok.dump());
  const Vocab v = read_vocab_from_tokenizer_json(dir + "/tokenizer.json", "");
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_EQ(v.tokens,
            (std::vector<std::string>{"a", "b", "ab", "\xc4\xa0", "<|begin_of_text|>", "<tool>"}));
  EXPECT_EQ(v.types, (std::vector<TokenType>{TokenType::Normal, TokenType::Normal,
                                             TokenType::Normal, TokenType::Normal,
                                             TokenType::Control, TokenType::UserDefined}));
  EXPECT_TRUE(v.scores.empty());
  EXPECT_EQ(v.merges, std::vector<std::string>{"a b"});
  EXPECT_TRUE(v.add_bos);
  EXPECT_EQ(v.bos_id, 4);
  // The SentencePiece reader refuses it with a reason.
  EXPECT_THROW(read_spm_vocab_from_tokenizer_json(dir + "/tokenizer.json", ""), Error);
  // Written into a GGUF, the reader sees the same vocabulary.
  GgufConvertOptions opt;
  write_random_gguf(parse_random_spec("dim=32,layers=1,heads=1,ffn=32,vocab=6,ctx=16"),
                    dir + "/r.gguf", opt, 1, &v);
  const ModelFile m = read_gguf(dir + "/r.gguf");
  EXPECT_EQ(m.vocab.model, "gpt2");
  EXPECT_EQ(m.vocab.pre, "llama-bpe");
  EXPECT_EQ(m.vocab.tokens, v.tokens);
  EXPECT_EQ(m.vocab.merges, v.merges);
  EXPECT_EQ(m.vocab.bos_id, 4);
}

// Llama 3.1 rope scaling travels through GGUF as rope_freqs.weight (divisors
// of each frequency); reading the file back must give the frequencies the HF
// config gives. theta 500000 and head_dim 16 put frequencies in all three
// bands (kept, interpolated, divided by factor).
TEST(GgufWriter, Llama3RopeScalingSurvivesAsRopeFreqs) {
  auto cfg = tiny_config();
  cfg["rope_theta"] = 500000.0;
  cfg["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
  const ModelFile hf = load_hf_checkpoint(write_checkpoint("llama3rope", cfg, tiny_tensors()));
  const std::string out = scratch_dir("llama3rope_out") + "/m.gguf";
  write_gguf(hf, out, GgufConvertOptions{});
  const ModelFile g = read_gguf(out);
  ASSERT_EQ(g.config.rope_scaling.freq_factors.size(), static_cast<size_t>(hf.config.head_dim / 2));
  const kernels::RopeTable a(hf.config, 4), b(g.config, 4);
  int scaled = 0, kept = 0;
  for (size_t i = 0; i < a.inv_freq().size(); ++i) {
    EXPECT_NEAR(b.inv_freq()[i], a.inv_freq()[i], 1e-6 * a.inv_freq()[i]) << i;
    const float f = g.config.rope_scaling.freq_factors[i];
    scaled += f == 8.0f;
    kept += f == 1.0f;
  }
  EXPECT_GT(scaled, 0);
  EXPECT_GT(kept, 0);
  EXPECT_LT(scaled + kept, static_cast<int>(a.inv_freq().size()));  // some interpolated
}

}  // namespace
}  // namespace nucleus
