// nucleus logits: the forward pass's output for a list of ids, as JSON, so
// outside checks can verify the model against another implementation; with
// --activations, every intermediate output of that pass instead (shape and
// summary statistics, optionally dumped as .npy files for numpy).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "runtime/engine.h"
#include "util/error.h"
#include "util/npy.h"

namespace nucleus::cli {
namespace {

// Prints one line per observed output and writes it to `dump_dir` when set.
// With a layer filter only that decoder layer's outputs are shown.
class ActivationPrinter : public ActivationObserver {
 public:
  ActivationPrinter(int64_t n_layers, int64_t only_layer, std::string dump_dir)
      : n_layers_(n_layers), only_layer_(only_layer), dump_dir_(std::move(dump_dir)) {}

  void on_activation(int64_t layer, std::string_view name, const float* data, int64_t rows,
                     int64_t width) override {
    if (only_layer_ >= 0 && layer != only_layer_) return;
    const int64_t count = rows * width;
    double sum = 0, sumsq = 0, maxabs = 0;
    for (int64_t i = 0; i < count; ++i) {
      const double x = data[i];
      sum += x;
      sumsq += x * x;
      maxabs = std::max(maxabs, std::fabs(x));
    }
    const double mean = count > 0 ? sum / static_cast<double>(count) : 0;
    const double rms = count > 0 ? std::sqrt(sumsq / static_cast<double>(count)) : 0;
    const std::string file = file_name(layer, name);
    std::string shape = "(" + std::to_string(rows);
    shape += ", ";
    shape += std::to_string(width);
    shape += ")";
    std::printf("%-24s %-12s %+.6e  %.6e  %.6e\n", file.c_str(), shape.c_str(), mean, rms, maxabs);
    if (!dump_dir_.empty()) {
      const int64_t dims[2] = {rows, width};
      write_npy_f32((std::filesystem::path(dump_dir_) / (file + ".npy")).string(), data, dims);
    }
  }

 private:
  // "layer03.q", "embedding", "output_norm", "logits".
  std::string file_name(int64_t layer, std::string_view name) const {
    if (layer < 0 || layer >= n_layers_) return std::string(name);
    char buf[32];
    std::snprintf(buf, sizeof buf, "layer%02lld.", static_cast<long long>(layer));
    std::string s = buf;
    s += name;
    return s;
  }

  int64_t n_layers_;
  int64_t only_layer_;
  std::string dump_dir_;
};

}  // namespace

Command add_logits(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string tokens;
    bool all = false;
    bool activations = false;
    int64_t layer = -1;
    std::string dump;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("logits", "print the logits of a forward pass as JSON");
  o->model.add_to(sub);
  o->model.add_kv_type_to(sub);
  sub->add_option("--tokens", o->tokens, "prompt as comma-separated token ids")->required();
  sub->add_flag("--all", o->all, "logits of every position, not just the last");
  sub->add_flag("--activations", o->activations,
                "instead of the logits, print every intermediate output (shape, mean, RMS, "
                "max |x|) of the pass, logits of every position included");
  auto* layer_opt =
      sub->add_option("--layer", o->layer, "with --activations: only this decoder layer");
  auto* dump_opt = sub->add_option(
      "--dump", o->dump, "with --activations: also write each output to DIR as float32 .npy");
  return {
      sub, [o, layer_opt, dump_opt] {
        check(o->activations || (layer_opt->count() == 0 && dump_opt->count() == 0),
              "--layer and --dump need --activations");
        const std::vector<int32_t> ids = parse_ids(o->tokens);
        check(!ids.empty(), "--tokens: empty prompt");
        LoadedModel m = load_model(o->model);
        EngineOptions eo;
        eo.threads = o->model.thread_count();
        eo.kv_type = parse_kv_type(o->model.kv_type);
        eo.bf16_dot = kernels::parse_bf16_dot(o->model.bf16_dot.c_str());
        eo.max_sequences = 1;
        Engine engine(m.model, eo);
        std::vector<float> logits;
        if (o->activations) {
          const int64_t n_layers = engine.config().n_layers;
          check(layer_opt->count() == 0 || (o->layer >= 0 && o->layer < n_layers),
                "--layer " + std::to_string(o->layer) + " is out of range [0, " +
                    std::to_string(n_layers) + ")");
          if (!o->dump.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(o->dump, ec);
            check(!ec && std::filesystem::is_directory(o->dump),
                  "--dump: cannot create directory " + o->dump);
          }
          ActivationPrinter printer(n_layers, layer_opt->count() > 0 ? o->layer : -1, o->dump);
          std::printf("# one forward pass over %zu tokens; rows are positions\n", ids.size());
          std::printf("%-24s %-12s %-15s %-14s %s\n", "# output", "shape", "mean", "rms", "max|x|");
          engine.set_observer(&printer);
          engine.prefill(engine.kv().create(), ids, logits, /*all_positions=*/true);
          engine.set_observer(nullptr);
          return 0;
        }
        engine.prefill(engine.kv().create(), ids, logits, o->all);
        const int64_t vocab = engine.vocab_size();
        nlohmann::json out;
        auto row = [&](int64_t r) {
          return std::vector<float>(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
        };
        if (o->all) {
          nlohmann::json rows = nlohmann::json::array();
          for (size_t r = 0; r < ids.size(); ++r) rows.push_back(row(static_cast<int64_t>(r)));
          out["logits"] = rows;
        } else {
          out["logits"] = row(0);
        }
        std::printf("%s\n", out.dump().c_str());
        return 0;
      }};
}

}  // namespace nucleus::cli
