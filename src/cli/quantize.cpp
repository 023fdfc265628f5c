// `nucleus quantize IN.gguf OUT.gguf TYPE`: rewrite a GGUF file's weight
// matrices in another type.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/common.h"
#include "formats/gguf_convert.h"

namespace nucleus::cli {

namespace {

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::string type;
  int threads = 0;
};

int run_quantize(const QuantizeArgs& a) {
  GgufConvertOptions opt;
  opt.type = parse_dtype(a.type);
  opt.threads = a.threads;
  const auto t0 = std::chrono::steady_clock::now();
  requantize_gguf(a.input, a.output, opt);
  report_written(a.output, opt.type, t0);
  return 0;
}

}  // namespace

Command add_quantize(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* sub = app.add_subcommand(
      "quantize", "rewrite a GGUF file's weight matrices as f32, f16, bf16, q8_0 or q4_0");
  sub->add_option("input", args->input, "input .gguf file")->required();
  sub->add_option("output", args->output, "output .gguf file")->required();
  sub->add_option("type", args->type, "f32, f16, bf16, q8_0 or q4_0")->required();
  sub->add_option("-t,--threads", args->threads, "threads (0 = all)")->capture_default_str();
  return Command{sub, [args] { return run_quantize(*args); }};
}

}  // namespace nucleus::cli
