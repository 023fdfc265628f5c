// `nucleus quantize IN.gguf OUT.gguf TYPE`: rewrite a GGUF file's weight
// matrices in another type.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/common.h"
#include "formats/gguf_convert.h"
#include "formats/quant_recipe.h"

namespace nucleus::cli {

namespace {

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::string type;
  int threads = 0;
};

int run_quantize(const QuantizeArgs& a) {
  const QuantRecipe recipe = parse_quant_recipe(a.type);
  const auto t0 = std::chrono::steady_clock::now();
  quantize_gguf(a.input, a.output, recipe, a.threads);
  report_written(a.output, recipe.base, t0);
  return 0;
}

}  // namespace

Command add_quantize(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* sub = app.add_subcommand("quantize",
                                     "rewrite a GGUF file's weight matrices in one type, or a "
                                     "llama.cpp mix (q4_k_m, q5_k_m, ...)");
  sub->add_option("input", args->input, "input .gguf file")->required();
  sub->add_option("output", args->output, "output .gguf file")->required();
  sub->add_option(
         "type", args->type,
         "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, or the llama.cpp "
         "mixes q4_k_s, q4_k_m, q5_k_s, q5_k_m (output.weight and some attn_v / ffn_down "
         "in q6_k)")
      ->required();
  sub->add_option("-t,--threads", args->threads, "threads (0 = all)")->capture_default_str();
  return Command{sub, [args] { return run_quantize(*args); }};
}

}  // namespace nucleus::cli
