#pragma once
// A self-contained SVG chart of a generation's cost against generated tokens:
// left panel cumulative FLOPs, right panel KV memory, each with and without the
// KV cache. Units (GFLOP/TFLOP, KiB/MiB/GiB) follow the data's size.
#include <string>
#include <vector>

#include "cost/cost.h"

namespace nucleus::cost {

struct ChartSeries {
  std::string name;
  std::string color;  // any SVG colour
  bool dashed = false;
  std::vector<double> y;  // y[i] at x = i + 1
};

struct ChartPanel {
  std::string title;
  std::string quantity;  // y-axis label without unit, e.g. "cumulative compute"
  bool bytes = false;    // binary byte units, else SI FLOP units
  std::vector<ChartSeries> series;
};

// Panels side by side, sharing the x axis label and one legend.
std::string render_svg_chart(const std::string& title, const std::string& subtitle,
                             const std::string& x_label, const std::vector<ChartPanel>& panels);

// The standard `nucleus cost --svg` chart for a run with and without the cache.
std::string render_cost_svg(const std::string& model_name, const RunCost& cached,
                            const RunCost& uncached, DType weight_dtype);

// Writes text to path; throws Error naming the file on failure.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace nucleus::cost
