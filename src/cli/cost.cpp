// `nucleus cost`: what a generation costs for a model or a named shape, from the
// analytic model in src/cost/ (no inference is run).
#include "cost/cost.h"

#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/common.h"
#include "cost/probe.h"
#include "cost/report.h"
#include "cost/svg_chart.h"
#include "formats/model_file.h"
#include "util/error.h"

namespace nucleus::cli {
namespace {

struct CostOptions {
  ModelOptions model;
  std::string shape;
  int64_t prompt = 512;
  int64_t new_tokens = 128;
  int64_t batch = 1;
  bool no_kv_cache = false;
  bool json = false;
  bool probe = false;
  std::string svg;
  std::string type;
};

int run_cost_command(const CostOptions& o) {
  ModelConfig cfg;
  std::string name;
  DType dtype = DType::F32;
  check(o.shape.empty() || o.model.model.empty(),
        "cost: give either -m MODEL or --shape NAME, not both");
  if (!o.shape.empty()) {
    cfg = cost::named_shape(o.shape);
    name = o.shape;
  } else {
    const std::string path = o.model.model_path();
    ModelFile file = load_model_file(path);
    cfg = file.config;
    dtype = layer_weight_type(file);
    name = path;
  }
  if (!o.type.empty()) dtype = parse_dtype(o.type);
  check(o.prompt + o.new_tokens <= cfg.context_length,
        "cost: prompt (" + std::to_string(o.prompt) + ") + new tokens (" +
            std::to_string(o.new_tokens) + ") exceeds the model's context length " +
            std::to_string(cfg.context_length));

  cost::MachinePeaks peaks;
  if (o.probe) {
    peaks = cost::measure_peaks({});
    const std::string cache = cost::peaks_cache_path();
    cost::save_peaks(peaks, cache);
    std::fprintf(stderr, "nucleus cost: measured peaks saved to %s\n", cache.c_str());
  } else {
    peaks = cost::cached_or_default_peaks();
  }
  const cost::CostReport report =
      cost::make_report(name, cfg, dtype, o.prompt, o.new_tokens, o.batch, !o.no_kv_cache, peaks,
                        o.model.thread_count());
  const std::string text = o.json ? cost::render_json(report) + "\n" : cost::render_text(report);
  std::fputs(text.c_str(), stdout);
  if (!o.svg.empty()) {
    cost::write_text_file(
        o.svg, cost::render_cost_svg(name, report.run_cached, report.run_uncached, dtype));
    if (!o.json) std::printf("chart written to %s\n", o.svg.c_str());
  }
  return 0;
}

}  // namespace

Command add_cost(CLI::App& app) {
  auto opts = std::make_shared<CostOptions>();
  CLI::App* sub = app.add_subcommand("cost",
                                     "Analytic FLOPs, bytes and KV memory of a generation (prefill "
                                     "+ decode), with and without KV cache");
  opts->model.add_to(sub);
  std::string shapes;
  for (const auto& s : cost::named_shape_names()) {
    if (!shapes.empty()) shapes += "|";
    shapes += s;
  }
  sub->add_option("--shape", opts->shape, "Cost a named shape instead of a model file: " + shapes);
  sub->add_option("-p,--prompt-tokens", opts->prompt, "Prompt length in tokens")
      ->default_val(512)
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 22));
  sub->add_option("-n,--new-tokens", opts->new_tokens, "Tokens to generate")
      ->default_val(128)
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 22));
  sub->add_option("-b,--batch", opts->batch, "Sequences decoded together")
      ->default_val(1)
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  sub->add_flag(
      "--no-kv-cache", opts->no_kv_cache,
      "Describe decode steps without the KV cache (each step re-runs the whole sequence)");
  sub->add_flag("--json", opts->json, "Print JSON instead of the table");
  sub->add_option("--svg", opts->svg,
                  "Write a chart of cumulative FLOPs and KV memory to this SVG file");
  sub->add_option("--type", opts->type,
                  "Weight type to cost: f32, f16, bf16, q8_0, q4_0 (default: the file's)");
  sub->add_flag("--probe", opts->probe,
                "Measure this machine's bandwidth and peaks now and cache them");
  return Command{sub, [opts] { return run_cost_command(*opts); }};
}

}  // namespace nucleus::cli
