// Hostile and broken safetensors files / HF checkpoint directories: every one
// must give one nucleus::Error naming the file and the offending field, never
// a crash or an out-of-bounds read. Files are built by hand, one defect each.
#include <gtest/gtest.h>

#include <filesystem>

#include "formats/hf_checkpoint.h"
#include "formats/safetensors.h"
#include "hf_test_util.h"
#include "util/error.h"

namespace nucleus {
namespace {

using namespace hftest;

// Runs fn, expecting an Error whose message contains every needle.
template <typename F>
void expect_error(F fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected nucleus::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const std::string& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << n << " in: " << msg;
  }
}

std::string st_file(const std::string& name, const std::string& bytes) {
  const std::string path = scratch_dir("st_" + name) + "/" + name + ".safetensors";
  write_file(path, bytes);
  return path;
}

TEST(SafetensorsBadInput, GoodFileReads) {
  const std::string p = st_file(
      "good", make_safetensors({{"w", "F32", {2, 3}, {1, 2, 3, 4, 5, 6}}, {"h", "BF16", {4}, {}}}));
  const SafetensorsFile f = read_safetensors(p);
  ASSERT_EQ(f.tensors.size(), 2u);
  const TensorView& w = f.tensors.at("w");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{3, 2}));  // ggml order
  EXPECT_EQ(w.type, DType::F32);
  EXPECT_EQ(reinterpret_cast<const float*>(w.data)[5], 6.0f);
  EXPECT_EQ(f.tensors.at("h").type, DType::BF16);
}

TEST(SafetensorsBadInput, TooShortForHeader) {
  const std::string p = st_file("short", "abc");
  expect_error([&] { read_safetensors(p); }, {p, "too short"});
}

TEST(SafetensorsBadInput, HeaderLengthBeyondFile) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string p = st_file("len", safetensors_bytes(h, "abcd", 1000));
  expect_error([&] { read_safetensors(p); }, {p, "header length 1000"});
  const std::string p2 = st_file("huge", safetensors_bytes(h, "abcd", int64_t{1} << 62));
  expect_error([&] { read_safetensors(p2); }, {p2, "header length"});
}

TEST(SafetensorsBadInput, BadJson) {
  const std::string p = st_file("json", safetensors_bytes("{\"w\": [1, 2", ""));
  expect_error([&] { read_safetensors(p); }, {p, "not valid JSON"});
  const std::string p2 = st_file("array", safetensors_bytes("[1, 2]", ""));
  expect_error([&] { read_safetensors(p2); }, {p2, "not a JSON object"});
}

TEST(SafetensorsBadInput, UnsupportedDtypeNamesTensor) {
  const std::string p = st_file("i32", make_safetensors({{"ids", "I32", {4}, {}}}));
  expect_error([&] { read_safetensors(p); }, {p, "'ids'", "I32"});
}

TEST(SafetensorsBadInput, OffsetsOutOfRange) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string p = st_file("range", safetensors_bytes(h, "abcd"));
  expect_error([&] { read_safetensors(p); }, {p, "'w'", "[0, 8]", "beyond"});
}

TEST(SafetensorsBadInput, EndBeforeBegin) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})";
  const std::string p = st_file("order", safetensors_bytes(h, "abcd"));
  expect_error([&] { read_safetensors(p); }, {p, "'w'", "end before begin"});
}

TEST(SafetensorsBadInput, SizeDoesNotMatchShape) {
  const std::string h = R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})";
  const std::string p = st_file("size", safetensors_bytes(h, "abcdefgh"));
  expect_error([&] { read_safetensors(p); }, {p, "'w'", "8 bytes", "needs 6"});
}

TEST(SafetensorsBadInput, ShapeOverflow) {
  const std::string h =
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})";
  const std::string p = st_file("overflow", safetensors_bytes(h, "abcd"));
  expect_error([&] { read_safetensors(p); }, {p, "'w'", "overflow"});
  const std::string h2 = R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
  const std::string p2 = st_file("negative", safetensors_bytes(h2, "abcd"));
  expect_error([&] { read_safetensors(p2); }, {p2, "'w'", "-1"});
  const std::string h3 = R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})";
  const std::string p3 = st_file("fraction", safetensors_bytes(h3, "abcd"));
  expect_error([&] { read_safetensors(p3); }, {p3, "'w'", "1.5"});
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  const std::string p = st_file("overlap", safetensors_bytes(h, std::string(12, 'x')));
  expect_error([&] { read_safetensors(p); }, {p, "'b'", "overlap", "'a'"});
}

// The format's validator: tensors tile the data section from 0 to its end.
TEST(SafetensorsBadInput, GapBetweenTensors) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  const std::string p = st_file("gap", safetensors_bytes(h, std::string(12, 'x')));
  expect_error([&] { read_safetensors(p); }, {p, "'b'", "starts at data offset 8", "contiguous"});
  const std::string h2 = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  const std::string p2 = st_file("gap0", safetensors_bytes(h2, std::string(8, 'x')));
  expect_error([&] { read_safetensors(p2); }, {p2, "'a'", "starts at data offset 4"});
}

TEST(SafetensorsBadInput, BytesAfterLastTensor) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  const std::string p = st_file("trailing", safetensors_bytes(h, std::string(5, 'x')));
  expect_error([&] { read_safetensors(p); }, {p, "end at data offset 4", "has 5 bytes"});
}

TEST(SafetensorsBadInput, MissingFields) {
  const std::string h = R"({"w":{"dtype":"F32","shape":[1]}})";
  const std::string p = st_file("fields", safetensors_bytes(h, "abcd"));
  expect_error([&] { read_safetensors(p); }, {p, "'w'", "data_offsets"});
  const std::string h2 = R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})";
  const std::string p2 = st_file("dtype", safetensors_bytes(h2, "abcd"));
  expect_error([&] { read_safetensors(p2); }, {p2, "'w'", "dtype"});
}

// --- HF checkpoint directories ---------------------------------------------

TEST(HfBadInput, MissingConfig) {
  const std::string dir = scratch_dir("noconfig");
  write_file(dir + "/model.safetensors", make_safetensors(tiny_tensors()));
  expect_error([&] { load_hf_checkpoint(dir); }, {dir, "config.json"});
  expect_error([&] { load_hf_checkpoint(dir + "/nope"); }, {"nope", "not a directory"});
}

TEST(HfBadInput, UnknownArchitecture) {
  auto cfg = tiny_config();
  cfg["architectures"] = {"GPTNeoXForCausalLM"};
  const std::string dir = write_checkpoint("arch", cfg, tiny_tensors());
  expect_error([&] { load_hf_checkpoint(dir); },
               {"config.json", "architectures", "GPTNeoXForCausalLM"});
}

TEST(HfBadInput, BadConfigFields) {
  auto cfg = tiny_config();
  cfg["hidden_size"] = "32";
  std::string dir = write_checkpoint("field", cfg, tiny_tensors());
  expect_error([&] { load_hf_checkpoint(dir); }, {"config.json", "hidden_size", "\"32\""});
  cfg = tiny_config();
  cfg.erase("num_hidden_layers");
  dir = write_checkpoint("nolayers", cfg, tiny_tensors());
  expect_error([&] { load_hf_checkpoint(dir); }, {"config.json", "num_hidden_layers"});
  cfg = tiny_config();
  cfg["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  dir = write_checkpoint("yarn", cfg, tiny_tensors());
  expect_error([&] { load_hf_checkpoint(dir); }, {"config.json", "rope_scaling", "yarn"});
  cfg = tiny_config();
  cfg["num_key_value_heads"] = 3;
  dir = write_checkpoint("kvheads", cfg, tiny_tensors());
  expect_error([&] { load_hf_checkpoint(dir); }, {"config.json", "KV head"});
  dir = scratch_dir("badjson");
  write_file(dir + "/config.json", "{\"architectures\": [");
  expect_error([&] { load_hf_checkpoint(dir); }, {"config.json", "not valid JSON"});
}

TEST(HfBadInput, MissingTensor) {
  auto tensors = tiny_tensors();
  tensors.erase(tensors.begin() + 6);  // k_proj
  const std::string dir = write_checkpoint("missing", tiny_config(), tensors);
  expect_error([&] { load_hf_checkpoint(dir); },
               {dir, "missing tensor", "model.layers.0.self_attn.k_proj.weight"});
  // Untied config without lm_head.
  tensors = tiny_tensors();
  tensors.erase(tensors.begin() + 1);
  const std::string dir2 = write_checkpoint("nohead", tiny_config(), tensors);
  expect_error([&] { load_hf_checkpoint(dir2); }, {"lm_head.weight"});
  const std::string dir3 = scratch_dir("noweights");
  write_file(dir3 + "/config.json", tiny_config().dump());
  expect_error([&] { load_hf_checkpoint(dir3); }, {dir3, "model.safetensors"});
}

TEST(HfBadInput, ShapeDisagreesWithConfig) {
  auto tensors = tiny_tensors();
  tensors[9].shape = {63, 32};  // gate_proj
  const std::string dir = write_checkpoint("shape", tiny_config(), tensors);
  expect_error(
      [&] { load_hf_checkpoint(dir); },
      {"model.safetensors", "model.layers.0.mlp.gate_proj.weight", "[63, 32]", "[64, 32]"});
}

TEST(HfBadInput, UnknownOrExtraTensor) {
  auto tensors = tiny_tensors();
  tensors.push_back({"model.layers.1.input_layernorm.weight", "F32", {32}, {}});
  std::string dir = write_checkpoint("extra", tiny_config(), tensors);
  expect_error([&] { load_hf_checkpoint(dir); },
               {"model.layers.1.input_layernorm.weight", "1 layers"});
  tensors = tiny_tensors();
  tensors.push_back({"model.vision.weight", "F32", {4}, {}});
  dir = write_checkpoint("unknown", tiny_config(), tensors);
  expect_error([&] { load_hf_checkpoint(dir); }, {"unknown tensor", "model.vision.weight"});
}

TEST(HfBadInput, DtypeMismatch) {
  auto tensors = tiny_tensors();
  tensors[2].dtype = "I32";  // model.norm.weight
  const std::string dir = write_checkpoint("i32", tiny_config(), tensors);
  expect_error([&] { load_hf_checkpoint(dir); }, {"model.safetensors", "model.norm.weight", "I32"});
}

TEST(HfBadInput, TruncatedShard) {
  const std::string dir = write_checkpoint("trunc", tiny_config(), tiny_tensors());
  const std::string path = dir + "/model.safetensors";
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 100);
  // The last tensor in the file (sorted JSON keys: v_proj) no longer fits.
  expect_error([&] { load_hf_checkpoint(dir); }, {path, "beyond the data section"});
}

TEST(HfBadInput, HeaderLiesAboutOffsets) {
  // A header whose offsets describe a smaller tensor than its shape.
  const std::string dir = write_checkpoint("lie", tiny_config(), tiny_tensors());
  std::string bytes = read_file(dir + "/model.safetensors");
  const std::string from = "\"shape\":[32]";
  const size_t at = bytes.find(from);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, from.size(), "\"shape\":[31]");
  write_file(dir + "/model.safetensors", bytes);
  expect_error([&] { load_hf_checkpoint(dir); }, {"model.safetensors", "[31]", "needs 124"});
}

TEST(HfBadInput, IndexProblems) {
  std::string dir = write_checkpoint("idx", tiny_config(), tiny_tensors());
  std::filesystem::rename(dir + "/model.safetensors", dir + "/shard.safetensors");
  nlohmann::json wm = nlohmann::json::object();
  for (const StTensor& t : tiny_tensors()) wm[t.name] = "shard.safetensors";
  wm["model.norm.weight"] = "../escape.safetensors";
  write_file(dir + "/model.safetensors.index.json", nlohmann::json{{"weight_map", wm}}.dump());
  expect_error([&] { load_hf_checkpoint(dir); },
               {"model.safetensors.index.json", "../escape.safetensors"});
  // The index assigns a tensor to a shard that does not hold it.
  write_file(dir + "/other.safetensors", make_safetensors({{"unrelated", "F32", {1}, {}}}));
  wm["model.norm.weight"] = "other.safetensors";
  write_file(dir + "/model.safetensors.index.json", nlohmann::json{{"weight_map", wm}}.dump());
  expect_error([&] { load_hf_checkpoint(dir); }, {"missing tensor", "model.norm.weight"});
  write_file(dir + "/model.safetensors.index.json", "{\"weight_map\": 3}");
  expect_error([&] { load_hf_checkpoint(dir); }, {"model.safetensors.index.json", "weight_map"});
}

}  // namespace
}  // namespace nucleus
