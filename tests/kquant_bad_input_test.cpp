// Broken K-quant files: an unknown type id, a row length that is not whole
// super-blocks, a truncated super-block, NaN / Inf block scales — each a
// one-line nucleus::Error naming the file or tensor, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "formats/gguf.h"
#include "formats/model_file.h"
#include "formats_test_util.h"
#include "model/model.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kFile = std::string(NUCLEUS_TEST_DATA) + "/kquant/random-d256.q4_k_m.gguf";

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The error of loading bytes as a model and building it (a one-line message).
std::string build_error(const std::vector<uint8_t>& bytes) {
  testing::TempDir dir;
  const std::string path = dir.write("bad.gguf", bytes);
  try {
    auto file = std::make_shared<const ModelFile>(load_model_file(path));
    Model m(file);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "loaded without error";
  return "";
}

// Byte offset of the type field of tensor `name` in the header.
size_t type_field(const std::vector<uint8_t>& b, const std::string& name) {
  const std::string key = name;
  for (size_t i = 8; i + key.size() < b.size(); ++i) {
    uint64_t len;
    std::memcpy(&len, &b[i - 8], 8);
    if (len == key.size() && std::memcmp(&b[i], key.data(), key.size()) == 0) {
      uint32_t nd;
      std::memcpy(&nd, &b[i + key.size()], 4);
      return i + key.size() + 4 + 8 * nd;
    }
  }
  ADD_FAILURE() << "no tensor " << name;
  return 0;
}

TEST(KquantBadInput, ValidFileBuilds) {
  auto file = std::make_shared<const ModelFile>(load_model_file(kFile));
  EXPECT_NO_THROW(Model m(file));
}

TEST(KquantBadInput, UnknownTypeId) {
  auto b = read_all(kFile);
  const uint32_t bad = 99;
  std::memcpy(&b[type_field(b, "blk.0.attn_q.weight")], &bad, 4);
  const std::string msg = build_error(b);
  EXPECT_NE(msg.find("unsupported tensor type id 99"), std::string::npos) << msg;
}

TEST(KquantBadInput, RowLengthNotWholeSuperBlocks) {
  testing::GgufBuilder g = testing::tiny_llama();
  g.tensors[4].type = 12;  // Q4_K on rows of 8 elements
  const std::string msg = build_error(g.build());
  EXPECT_NE(msg.find("not a multiple of the q4_k block size 256"), std::string::npos) << msg;
}

TEST(KquantBadInput, TruncatedSuperBlock) {
  auto b = read_all(kFile);
  b.resize(b.size() - 100);  // the last tensor loses part of its last super-block
  const std::string msg = build_error(b);
  EXPECT_NE(msg.find("past the end"), std::string::npos) << msg;
}

TEST(KquantBadInput, NonFiniteScales) {
  const auto good = read_all(kFile);
  GgufFile g(kFile);
  for (const auto& t : g.tensor_infos()) {
    if (t.name != "blk.1.ffn_down.weight" && t.name != "blk.0.attn_q.weight") continue;
    // blk.1.ffn_down is Q6_K (d at byte 208 of a block), blk.0.attn_q Q4_K (d at 0, dmin at 2).
    const size_t base = g.data_offset() + t.offset + 144 * 5;
    for (const size_t field :
         t.ggml_type == 14 ? std::vector<size_t>{208 + 210 * 2} : std::vector<size_t>{0, 2}) {
      for (const uint16_t bad : {uint16_t{0x7c00}, uint16_t{0xfe00}}) {
        auto b = good;
        std::memcpy(&b[(t.ggml_type == 14 ? g.data_offset() + t.offset : base) + field], &bad, 2);
        const std::string msg = build_error(b);
        EXPECT_NE(msg.find(t.name), std::string::npos) << msg;
        EXPECT_NE(msg.find("NaN or infinite"), std::string::npos) << msg;
      }
    }
  }
}

}  // namespace
}  // namespace nucleus
