// `nucleus quantize` recipes against llama.cpp's llama-quantize: quantizing
// the F32 reference model with q4_k_s / q4_k_m / q5_k_s / q5_k_m / q6_k gives
// every tensor the type llama.cpp's file has (tests/data/kquant), and the
// model's logits stay about as close to F32 as llama.cpp's own file's.
#include "formats/quant_recipe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats/model_file.h"
#include "runtime/engine.h"
#include "util/error.h"

namespace nucleus {
namespace {

const std::string kData = std::string(NUCLEUS_TEST_DATA) + "/kquant/";

std::map<std::string, DType> types_of(const std::string& path) {
  GgufFile g(path);
  std::map<std::string, DType> m;
  for (const auto& t : g.tensor_infos()) m[t.name] = static_cast<DType>(t.ggml_type);
  return m;
}

double rms_to_f32(const std::string& path, const nlohmann::json& f32) {
  auto model =
      std::make_shared<const Model>(std::make_shared<const ModelFile>(load_model_file(path)));
  Engine e(model, {});
  double sq = 0;
  int64_t n = 0;
  for (const auto& run : f32) {
    const auto prompt = run["prompt"].get<std::vector<int32_t>>();
    const auto want = run["logits_last"].get<std::vector<float>>();
    std::vector<float> logits;
    auto seq = e.kv().create();
    e.prefill(seq, prompt, logits);
    e.kv().release(seq);
    for (size_t i = 0; i < want.size(); ++i, ++n) sq += std::pow(logits[i] - want[i], 2);
  }
  return std::sqrt(sq / static_cast<double>(n));
}

TEST(QuantRecipe, TensorTypesAndAccuracyMatchLlamaQuantize) {
  std::ifstream in(kData + "logits.json");
  const nlohmann::json ref = nlohmann::json::parse(in)["files"];
  const auto dir =
      std::filesystem::temp_directory_path() / ("nucleus_recipe_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* recipe : {"q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k"}) {
    const std::string theirs = kData + "random-d256." + recipe + ".gguf";
    const std::string ours = (dir / (std::string(recipe) + ".gguf")).string();
    quantize_gguf(kData + "random-d256.f32.gguf", ours, parse_quant_recipe(recipe), 1);
    EXPECT_EQ(types_of(ours), types_of(theirs)) << recipe;
    GgufFile g(ours);
    EXPECT_EQ(g.get_int("general.file_type"), GgufFile(theirs).get_int("general.file_type"));
    const double a = rms_to_f32(ours, ref["random-d256.f32.gguf"]);
    const double b = rms_to_f32(theirs, ref["random-d256.f32.gguf"]);
    std::printf("%-7s logit rms to F32: nucleus-quantized %.5f, llama-quantized %.5f\n", recipe, a,
                b);
    EXPECT_LE(a, 1.10 * b) << recipe;
  }
  std::filesystem::remove_all(dir);
}

TEST(QuantRecipe, RejectsUnknownNamesAndUnwritableTypes) {
  EXPECT_THROW(parse_quant_recipe("q4_k_xl"), Error);
  // nucleus reads Q2_K but has no quantizer for it.
  const auto dir = std::filesystem::temp_directory_path();
  const std::string out = (dir / ("nucleus_recipe_q2k_" + std::to_string(::getpid()))).string();
  EXPECT_THROW(quantize_gguf(kData + "random-d256.f32.gguf", out, parse_quant_recipe("q2_k"), 1),
               Error);
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace nucleus
