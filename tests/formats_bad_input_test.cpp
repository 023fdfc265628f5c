// Hostile and broken model files: every defect must surface as a one-line
// nucleus::Error naming the file, never a crash or an out-of-bounds read
// (run under ASan/UBSan to make the latter visible).
#include <gtest/gtest.h>

#include <cstring>
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

using testing::Bytes;
using testing::GgufBuilder;
using testing::TempDir;
using testing::tiny_llama;

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/formats/";

// Loads `bytes` as a model file and returns the error message; fails the test
// when loading succeeds or throws anything other than nucleus::Error.
std::string load_error(const std::vector<uint8_t>& bytes, const std::string& name = "bad.gguf",
                       const LoadOptions& opt = {}) {
  TempDir dir;
  const std::string path = dir.write(name, bytes);
  try {
    load_model_file(path, opt);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    return msg;
  }
  ADD_FAILURE() << "loaded without error";
  return "";
}

#define EXPECT_ERROR_HAS(bytes, text)                                 \
  do {                                                                \
    const std::string msg_ = load_error(bytes);                       \
    EXPECT_NE(msg_.find(text), std::string::npos) << "got: " << msg_; \
  } while (0)

std::vector<uint8_t> header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  Bytes b;
  b.put<uint32_t>(0x46554747);
  b.put(version);
  b.put(n_tensors);
  b.put(n_kv);
  return b.b;
}

TEST(BadGguf, ValidBaselineLoads) {
  TempDir dir;
  EXPECT_NO_THROW(load_model_file(dir.write("ok.gguf", tiny_llama().build())));
}

TEST(BadGguf, EveryTruncationFails) {
  // Every tensor's size is a multiple of 32, so the file has no trailing
  // padding and every proper prefix lacks something the reader needs. Parsed
  // from memory: thousands of temp files would make the test slow.
  const std::vector<uint8_t> full = tiny_llama().build();
  int failures = 0;
  for (size_t n = 0; n < full.size() && failures < 5; ++n) {
    // A fresh copy of exactly n bytes, so reading past it is visible to ASan.
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      const GgufFile g("cut.gguf", prefix);
      gguf_model(g);
      ADD_FAILURE() << "prefix of " << n << " bytes loaded";
      ++failures;
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.find('\n') != std::string::npos || msg.rfind("cut.gguf: ", 0) != 0) {
        ADD_FAILURE() << "bad message: " << msg;
        ++failures;
      }
    }
  }
  EXPECT_NO_THROW(gguf_model(GgufFile("full.gguf", full)));
  // Vocab-only reads need only the metadata; with no tensors the alignment
  // padding at the end is optional, so cut only before the last metadata byte
  // (the add_bos_token bool, value 1).
  const std::vector<uint8_t> vocab_only = tiny_llama(false).build();
  size_t end = vocab_only.size();
  while (end > 0 && vocab_only[end - 1] == 0) --end;
  for (size_t n = 0; n < end; ++n) {
    const std::vector<uint8_t> prefix(vocab_only.begin(),
                                      vocab_only.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(gguf_vocab(GgufFile("cut.gguf", prefix)), Error) << n;
  }
  EXPECT_EQ(gguf_vocab(GgufFile("cut.gguf", std::span(vocab_only.data(), end))).size(), 4);
  // And through the file path once, at a cut inside the tensor data.
  TempDir dir;
  const std::vector<uint8_t> cut(full.begin(), full.end() - 100);
  EXPECT_THROW(load_model_file(dir.write("cut.gguf", cut)), Error);
}

TEST(BadGguf, RandomMutationsNeverCrash) {
  // Deterministic corruption of 1-4 bytes at a time (header, metadata and
  // tensor-info region, where they matter): each file must load or throw Error.
  const GgufBuilder builder = tiny_llama();
  const std::vector<uint8_t> full = builder.build();
  size_t data_bytes = 0;  // tensor data fills the end of the file
  for (const auto& t : builder.tensors) data_bytes += t.data.size();
  const size_t meta_end = full.size() - data_bytes;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int loaded = 0, rejected = 0;
  constexpr int kIters = 3000;
  for (int iter = 0; iter < kIters; ++iter) {
    std::vector<uint8_t> b = full;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = next() % meta_end;
      const uint64_t r = next();
      b[at] = (r & 1) ? static_cast<uint8_t>(r >> 8)
                      : static_cast<uint8_t>(b[at] ^ (1u << ((r >> 8) % 8)));
    }
    try {
      gguf_model(GgufFile("mut.gguf", b));
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(loaded + rejected, kIters);
}

TEST(BadGguf, WrongMagic) {
  GgufBuilder g = tiny_llama();
  g.magic = 0x46554748;
  EXPECT_ERROR_HAS(g.build(), "bad magic");  // named .gguf: the GGUF reader reports it
  // Under another name the dispatcher tries llama2.c, which rejects the header.
  EXPECT_FALSE(load_error(g.build(), "model.bin").empty());
  TempDir dir;
  const std::string path = dir.write("x.gguf", g.build());
  try {
    GgufFile f(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos) << e.what();
  }
}

TEST(BadGguf, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    GgufBuilder g = tiny_llama();
    g.version = v;
    EXPECT_ERROR_HAS(g.build(), "unsupported GGUF version " + std::to_string(v));
  }
  GgufBuilder g2 = tiny_llama();
  g2.version = 2;
  TempDir dir;
  EXPECT_NO_THROW(load_model_file(dir.write("v2.gguf", g2.build())));
}

TEST(BadGguf, UnsupportedTensorType) {
  GgufBuilder g = tiny_llama();
  g.tensors[4].type = 16;  // IQ2_XXS: a ggml type nucleus does not read
  const std::string msg = load_error(g.build());
  EXPECT_NE(msg.find("blk.0.attn_q.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("type id 16"), std::string::npos) << msg;
}

TEST(BadGguf, RowNotMultipleOfBlock) {
  GgufBuilder g = tiny_llama();
  g.tensors[4].type = 8;  // Q8_0 blocks of 32; the row has 8 elements
  EXPECT_ERROR_HAS(g.build(), "not a multiple of the q8_0 block size 32");
}

TEST(BadGguf, TensorDataPastEnd) {
  GgufBuilder g = tiny_llama();
  g.tensors.back().offset_override = 1 << 20;
  EXPECT_ERROR_HAS(g.build(), "runs past the end of the file");
  GgufBuilder h = tiny_llama();
  h.tensors.back().ne = {16, 9};  // one row more than the data holds
  EXPECT_ERROR_HAS(h.build(), "runs past the end of the file");
  GgufBuilder k = tiny_llama();
  k.tensors.back().offset_override =
      static_cast<int64_t>(0x7fffffffffffffe0);  // offset + size overflows
  EXPECT_ERROR_HAS(k.build(), "runs past the end of the file");
}

TEST(BadGguf, MisalignedOffset) {
  GgufBuilder g = tiny_llama();
  g.tensors.back().offset_override = 4;
  EXPECT_ERROR_HAS(g.build(), "not a multiple of the alignment");
}

TEST(BadGguf, BadAlignment) {
  GgufBuilder g = tiny_llama();
  g.add_u32("general.alignment", 48);
  EXPECT_ERROR_HAS(g.build(), "general.alignment");
  GgufBuilder z = tiny_llama();
  z.add_u32("general.alignment", 0);
  EXPECT_ERROR_HAS(z.build(), "general.alignment");
}

TEST(BadGguf, CustomAlignmentLoads) {
  GgufBuilder g = tiny_llama();
  g.alignment = 64;
  g.add_u32("general.alignment", 64);
  TempDir dir;
  const ModelFile m = load_model_file(dir.write("a64.gguf", g.build()));
  for (const auto& [name, t] : m.tensors)
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << name;
}

TEST(BadGguf, HugeStringLength) {
  std::vector<uint8_t> b = header(3, 0, 1);
  Bytes rest;
  rest.put<uint64_t>(uint64_t{1} << 62);    // key length
  rest.raw(std::vector<uint8_t>(64, 'a'));  // enough bytes that the count check passes
  b.insert(b.end(), rest.b.begin(), rest.b.end());
  EXPECT_ERROR_HAS(b, "string length");

  GgufBuilder g = tiny_llama();
  g.key("big", 8);
  g.kv.put<uint64_t>(~uint64_t{0});  // value string length
  EXPECT_ERROR_HAS(g.build(), "string length");
}

TEST(BadGguf, HugeArrayCount) {
  for (uint32_t elem : {0u, 8u, 9u, 12u}) {
    GgufBuilder g = tiny_llama();
    g.key("big", 9);
    g.kv.put<uint32_t>(elem);
    g.kv.put<uint64_t>(uint64_t{1} << 61);
    EXPECT_ERROR_HAS(g.build(), "cannot fit");
  }
}

TEST(BadGguf, HugeCounts) {
  EXPECT_ERROR_HAS(header(3, 0, ~uint64_t{0}), "metadata count");
  EXPECT_ERROR_HAS(header(3, uint64_t{1} << 60, 0), "tensor count");
}

TEST(BadGguf, NestedArraysOfStrings) {
  // Arrays of arrays of strings are valid metadata.
  GgufBuilder g = tiny_llama();
  g.key("nested", 9);
  g.kv.put<uint32_t>(9);
  g.kv.put<uint64_t>(2);
  for (int k = 0; k < 2; ++k) {
    g.kv.put<uint32_t>(8);
    g.kv.put<uint64_t>(1);
    g.kv.str(k ? "y" : "x");
  }
  TempDir dir;
  const GgufFile f(dir.write("nested.gguf", g.build()));
  const GgufValue& v = f.get_array("nested");
  ASSERT_EQ(v.items.size(), 2u);
  EXPECT_EQ(v.items[1].items[0].s, "y");
  // Nesting without end is refused before it exhausts the stack.
  GgufBuilder deep = tiny_llama();
  deep.key("deep", 9);
  for (int k = 0; k < 100; ++k) {
    deep.kv.put<uint32_t>(9);
    deep.kv.put<uint64_t>(1);
  }
  deep.kv.put<uint32_t>(4);
  deep.kv.put<uint64_t>(0);
  EXPECT_ERROR_HAS(deep.build(), "nested deeper");
}

TEST(BadGguf, BadValueTypes) {
  GgufBuilder g = tiny_llama();
  g.key("weird", 13);
  g.kv.put<uint32_t>(0);
  EXPECT_ERROR_HAS(g.build(), "unknown value type 13");
  GgufBuilder b = tiny_llama();
  b.key("flag", 7);
  b.kv.put<uint8_t>(2);
  EXPECT_ERROR_HAS(b.build(), "bool");
  GgufBuilder t = tiny_llama();
  t.add_u32("general.architecture", 1);  // also a duplicate key
  EXPECT_ERROR_HAS(t.build(), "duplicate metadata key 'general.architecture'");
}

TEST(BadGguf, DimensionCount) {
  GgufBuilder g = tiny_llama();
  g.tensors[1].ne = {8, 1, 1, 1, 1};
  EXPECT_ERROR_HAS(g.build(), "dimension count 5");
  GgufBuilder z = tiny_llama();
  z.tensors[1].ne = {};
  EXPECT_ERROR_HAS(z.build(), "dimension count 0");
  GgufBuilder o = tiny_llama();
  o.tensors[1].ne = {uint64_t{1} << 32, uint64_t{1} << 32};  // element count overflows int64
  EXPECT_ERROR_HAS(o.build(), "overflowing shape");
  GgufBuilder e = tiny_llama();
  e.tensors[1].ne = {0};
  EXPECT_ERROR_HAS(e.build(), "invalid or overflowing shape");
}

TEST(BadGguf, TrailingOnesAreAccepted) {
  GgufBuilder g = tiny_llama();
  g.tensors[1].ne = {8, 1};  // output_norm as [8, 1]
  TempDir dir;
  EXPECT_NO_THROW(load_model_file(dir.write("ones.gguf", g.build())));
}

TEST(BadGguf, DuplicateTensorName) {
  GgufBuilder g = tiny_llama();
  g.tensors[3].name = "output_norm.weight";
  EXPECT_ERROR_HAS(g.build(), "duplicate tensor name 'output_norm.weight'");
}

TEST(BadGguf, InconsistentShapes) {
  struct Case {
    size_t index;
    std::vector<uint64_t> ne;
    std::string name;
  };
  // Each shape differs from what the config implies (dim 8, q 8, kv 4, ffn 16, vocab 4).
  const std::vector<Case> cases = {
      {0, {8, 5}, "token_embd.weight"},     {1, {16}, "output_norm.weight"},
      {2, {4, 8}, "output.weight"},         {4, {8, 4}, "blk.0.attn_q.weight"},
      {5, {8, 8}, "blk.0.attn_k.weight"},   {7, {4, 8}, "blk.0.attn_output.weight"},
      {9, {8, 8}, "blk.0.ffn_gate.weight"}, {11, {8, 16}, "blk.0.ffn_down.weight"},
  };
  for (const Case& c : cases) {
    GgufBuilder g = tiny_llama();
    g.tensors[c.index].ne = c.ne;
    g.add_f32_tensor("padding.weight", {256});  // keeps the data large enough for bigger shapes
    const std::string msg = load_error(g.build());
    EXPECT_NE(msg.find("inconsistent shapes"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.name), std::string::npos) << msg;
  }
}

TEST(BadGguf, MissingPieces) {
  GgufBuilder g = tiny_llama();
  g.tensors.erase(g.tensors.begin() + 5);  // blk.0.attn_k.weight
  EXPECT_ERROR_HAS(g.build(), "missing tensor blk.0.attn_k.weight");

  GgufBuilder m;
  m.add_string("general.architecture", "llama");
  m.add_u32("llama.embedding_length", 8);
  EXPECT_ERROR_HAS(m.build(), "missing metadata 'llama.context_length'");

  GgufBuilder t = tiny_llama();
  t.add_string("llama.attention.head_count_kv", "one");  // duplicate key, caught first
  EXPECT_ERROR_HAS(t.build(), "duplicate metadata key");
}

TEST(BadGguf, BadConfigValues) {
  // head_count 3 does not divide dim 8 (no rope.dimension_count to say otherwise).
  GgufBuilder g;
  g.add_string("general.architecture", "llama");
  g.add_u32("llama.context_length", 32);
  g.add_u32("llama.embedding_length", 8);
  g.add_u32("llama.block_count", 1);
  g.add_u32("llama.feed_forward_length", 16);
  g.add_u32("llama.attention.head_count", 3);
  g.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  EXPECT_ERROR_HAS(g.build(), "not a multiple of the head count 3");

  GgufBuilder n;
  n.add_string("general.architecture", "llama");
  n.add_u32("llama.context_length", 32);
  n.add_i32("llama.embedding_length", -8);
  n.add_u32("llama.block_count", 1);
  n.add_u32("llama.feed_forward_length", 16);
  n.add_u32("llama.attention.head_count", 2);
  n.add_u32("llama.attention.rope.dimension_count", 4);
  n.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  EXPECT_ERROR_HAS(n.build(), "must be positive");
}

TEST(BadGguf, BadVocab) {
  GgufBuilder g = tiny_llama();
  g.add_u32("tokenizer.ggml.bos_token_id", 4);
  EXPECT_ERROR_HAS(g.build(), "outside the vocabulary");
  GgufBuilder s = tiny_llama(false);
  s.add_f32_array("tokenizer.ggml.merges_scores", {1});
  s.add_i32_array("tokenizer.ggml.bogus", {1});
  TempDir dir;
  EXPECT_NO_THROW(read_gguf_vocab(dir.write("extra.gguf", s.build())));
  GgufBuilder t;
  t.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  t.add_i32_array("tokenizer.ggml.token_type", {1, 9});
  EXPECT_THROW(read_gguf_vocab(dir.write("types.gguf", t.build())), Error);
  GgufBuilder c;
  c.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  c.add_f32_array("tokenizer.ggml.scores", {1});
  EXPECT_THROW(read_gguf_vocab(dir.write("scores.gguf", c.build())), Error);
}

// ---- llama2.c ----

std::vector<uint8_t> l2c_header(std::vector<int32_t> fields) {
  Bytes b;
  for (int32_t f : fields) b.put(f);
  return b.b;
}

TEST(BadLlama2c, HeaderFields) {
  const std::vector<int32_t> ok = {64, 172, 5, 8, 4, 512, 512};
  for (size_t i = 0; i < ok.size(); ++i) {
    for (int32_t bad : {0, -1, INT32_MIN}) {
      if (i == 5 && bad == -1) continue;  // negative vocab is legal (untied)
      std::vector<int32_t> h = ok;
      h[i] = bad;
      const std::string msg = load_error(l2c_header(h), "bad.bin");
      EXPECT_TRUE(msg.find("must be positive") != std::string::npos ||
                  msg.find("invalid") != std::string::npos)
          << msg;
    }
  }
  EXPECT_FALSE(load_error(l2c_header({64, 172, 5, 7, 7, 512, 512}), "bad.bin").empty());  // 64 % 7
  EXPECT_FALSE(load_error(l2c_header({64, 172, 5, 8, 3, 512, 512}), "bad.bin").empty());  // 8 % 3
  EXPECT_FALSE(load_error(l2c_header({1 << 30, 172, 5, 8, 4, 512, 512}), "bad.bin").empty());
}

TEST(BadLlama2c, TooShort) {
  for (size_t n : {0u, 3u, 4u, 27u}) {
    std::vector<uint8_t> b = l2c_header({64, 172, 5, 8, 4, 512, 512});
    b.resize(n);
    EXPECT_FALSE(load_error(b, "short.bin").empty()) << n;
  }
  // A valid header but missing weights: the size check names both sizes.
  const std::string msg = load_error(l2c_header({64, 172, 5, 8, 4, 512, 512}), "noweights.bin");
  EXPECT_NE(msg.find("expected 1056540 bytes"), std::string::npos)
      << msg;  // README: 1056540-byte file
}

TEST(BadLlama2c, TruncatedRealFile) {
  std::ifstream f(kData + "stories260K.bin", std::ios::binary);
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  for (size_t cut : {size_t{28}, size_t{1000}, bytes.size() / 2, bytes.size() - 1}) {
    std::vector<uint8_t> b(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_NE(load_error(b, "cut.bin").find("does not match the header"), std::string::npos);
  }
  bytes.push_back(0);
  EXPECT_NE(load_error(bytes, "long.bin").find("does not match the header"), std::string::npos);
}

TEST(BadLlama2c, VersionedExportRefused) {
  Bytes b;
  b.put<uint32_t>(0x616b3432);
  b.put<int32_t>(1);
  b.raw(std::vector<uint8_t>(256, 0));
  EXPECT_NE(load_error(b.b, "v1.bin").find("ak42"), std::string::npos);
}

TEST(BadLlama2c, BadTokenizer) {
  TempDir dir;
  Bytes good;
  good.put<int32_t>(3);
  for (const char* t : {"<unk>", "\n<s>\n", "\n</s>\n", "abc"}) {
    good.put<float>(0.0f);
    good.put<int32_t>(static_cast<int32_t>(std::strlen(t)));
    good.raw(std::vector<uint8_t>(t, t + std::strlen(t)));
  }
  EXPECT_EQ(read_llama2c_vocab(dir.write("ok.bin", good.b), 4).tokens[3], "abc");
  for (size_t n = 0; n < good.b.size(); ++n) {
    std::vector<uint8_t> b(good.b.begin(), good.b.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(read_llama2c_vocab(dir.write("cut.bin", b), 4), Error) << n;
  }
  Bytes neg;
  neg.put<int32_t>(3);
  neg.put<float>(0.0f);
  neg.put<int32_t>(-5);
  EXPECT_THROW(read_llama2c_vocab(dir.write("neg.bin", neg.b), 1), Error);
  Bytes huge;
  huge.put<int32_t>(3);
  huge.put<float>(0.0f);
  huge.put<int32_t>(INT32_MAX);
  EXPECT_THROW(read_llama2c_vocab(dir.write("huge.bin", huge.b), 1), Error);
  // A broken tokenizer beside a model is an error, not a silent empty vocab.
  std::ifstream f(kData + "stories260K.bin", std::ios::binary);
  const std::string model =
      dir.write("model.bin", {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()});
  dir.write("tokenizer.bin", neg.b);
  EXPECT_THROW(load_model_file(model), Error);
}

TEST(BadPaths, DirectoryAndMissing) {
  TempDir dir;
  try {
    load_model_file(dir.path());
    ADD_FAILURE();
  } catch (const Error& e) {
    // A directory is read as a Hugging Face checkpoint, which needs config.json.
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos);
  }
  EXPECT_THROW(load_model_file(dir.path() + "/nope.gguf"), Error);
  LoadOptions opt;
  opt.tokenizer_path = dir.path() + "/nope.bin";
  EXPECT_THROW(load_model_file(kData + "stories260K.bin", opt), Error);
}

}  // namespace
}  // namespace nucleus
