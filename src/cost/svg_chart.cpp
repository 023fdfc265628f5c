#include "cost/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "cost/report.h"
#include "util/error.h"

namespace nucleus::cost {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

struct Unit {
  double scale;
  const char* name;
};

// The largest unit that keeps the maximum at or above 1.
Unit pick_unit(double max_value, bool bytes) {
  static const Unit kFlops[] = {{1, "FLOP"},     {1e3, "kFLOP"},  {1e6, "MFLOP"}, {1e9, "GFLOP"},
                                {1e12, "TFLOP"}, {1e15, "PFLOP"}, {1e18, "EFLOP"}};
  static const Unit kBytes[] = {{1, "B"},
                                {1024.0, "KiB"},
                                {1048576.0, "MiB"},
                                {1073741824.0, "GiB"},
                                {1099511627776.0, "TiB"}};
  const Unit* units = bytes ? kBytes : kFlops;
  const size_t n = bytes ? std::size(kBytes) : std::size(kFlops);
  Unit u = units[0];
  for (size_t i = 0; i < n; ++i)
    if (max_value >= units[i].scale) u = units[i];
  return u;
}

// A 1-2-2.5-5 step giving about `target` intervals over [0, max].
double nice_step(double max, int target) {
  if (max <= 0) return 1;
  const double raw = max / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

std::string tick_label(double v, double step) {
  // Enough decimals to tell neighbouring ticks apart.
  int decimals = 0;
  while (decimals < 6 && std::fabs(step * std::pow(10.0, decimals) -
                                   std::round(step * std::pow(10.0, decimals))) > 1e-6)
    ++decimals;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

constexpr double kPanelW = 470;
constexpr double kPlotLeft = 78;  // room for tick labels and the y label
constexpr double kPlotRight = 24;
constexpr double kTop = 104;  // title, subtitle, legend, panel title
constexpr double kPlotH = 300;
constexpr double kBottom = 58;  // x ticks and label

void draw_panel(std::string& out, const ChartPanel& p, double x0, const std::string& x_label) {
  size_t n = 0;
  double ymax = 0;
  for (const auto& s : p.series) {
    n = std::max(n, s.y.size());
    for (double v : s.y) ymax = std::max(ymax, v);
  }
  const Unit unit = pick_unit(ymax, p.bytes);
  const double ystep = nice_step(ymax / unit.scale, 5);
  // Headroom above the highest end so its value label sits above the line.
  const double ytop = std::max(ystep, std::ceil(ymax / unit.scale * 1.08 / ystep - 1e-9) * ystep);
  const double xmax = static_cast<double>(std::max<size_t>(n, 1));
  const double xstep = nice_step(xmax, 6);
  // The x axis ends at the last token; ticks stop at the last multiple of the step.
  const double xtop = xmax;

  const double left = x0 + kPlotLeft;
  const double width = kPanelW - kPlotLeft - kPlotRight;
  const double top = kTop;
  const double bottom = kTop + kPlotH;
  auto px = [&](double x) { return left + x / xtop * width; };
  auto py = [&](double y) { return bottom - y / ytop * kPlotH; };

  out += "<text x=\"" + num(left + width / 2) + "\" y=\"" + num(top - 12) +
         "\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" + escape(p.title) +
         "</text>\n";
  // Grid and y ticks.
  for (double v = 0; v <= ytop + ystep * 1e-6; v += ystep) {
    const std::string y = num(py(v));
    out += "<line x1=\"" + num(left) + "\" y1=\"" + y + "\" x2=\"" + num(left + width) +
           "\" y2=\"" + y + "\" stroke=\"#e3e3e3\"/>\n";
    out += "<text x=\"" + num(left - 6) + "\" y=\"" + num(py(v) + 4) +
           "\" text-anchor=\"end\" font-size=\"11\">" + tick_label(v, ystep) + "</text>\n";
  }
  for (double v = 0; v <= xtop + xstep * 1e-6; v += xstep) {
    const std::string x = num(px(v));
    out += "<line x1=\"" + x + "\" y1=\"" + num(top) + "\" x2=\"" + x + "\" y2=\"" + num(bottom) +
           "\" stroke=\"#efefef\"/>\n";
    out += "<line x1=\"" + x + "\" y1=\"" + num(bottom) + "\" x2=\"" + x + "\" y2=\"" +
           num(bottom + 4) + "\" stroke=\"#333\"/>\n";
    out += "<text x=\"" + x + "\" y=\"" + num(bottom + 17) +
           "\" text-anchor=\"middle\" font-size=\"11\">" + tick_label(v, xstep) + "</text>\n";
  }
  // Axes.
  out += "<line x1=\"" + num(left) + "\" y1=\"" + num(top) + "\" x2=\"" + num(left) + "\" y2=\"" +
         num(bottom) + "\" stroke=\"#333\"/>\n";
  out += "<line x1=\"" + num(left) + "\" y1=\"" + num(bottom) + "\" x2=\"" + num(left + width) +
         "\" y2=\"" + num(bottom) + "\" stroke=\"#333\"/>\n";
  out += "<text x=\"" + num(left + width / 2) + "\" y=\"" + num(bottom + 38) +
         "\" text-anchor=\"middle\" font-size=\"12\">" + escape(x_label) + "</text>\n";
  const std::string ylabel = p.quantity + " (" + unit.name + ")";
  out += "<text transform=\"translate(" + num(x0 + 18) + "," + num(top + kPlotH / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" + escape(ylabel) + "</text>\n";
  // Series.
  for (const auto& s : p.series) {
    if (s.y.empty()) continue;
    std::string points;
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (i) points += ' ';
      points += num(px(static_cast<double>(i + 1))) + "," + num(py(s.y[i] / unit.scale));
    }
    out += "<polyline fill=\"none\" stroke=\"" + escape(s.color) + "\" stroke-width=\"2.2\"";
    if (s.dashed) out += " stroke-dasharray=\"7,4\"";
    out += " points=\"" + points + "\"/>\n";
    if (s.y.size() == 1)
      out += "<circle cx=\"" + num(px(1)) + "\" cy=\"" + num(py(s.y[0] / unit.scale)) +
             "\" r=\"3\" fill=\"" + escape(s.color) + "\"/>\n";
  }
  // The final value of each series, so a line squashed against the axis still
  // reads; labels are nudged apart when the ends are close.
  double last_label_y = 1e9;  // labels go bottom to top
  std::vector<std::pair<double, const ChartSeries*>> ends;
  for (const auto& s : p.series)
    if (!s.y.empty()) ends.emplace_back(py(s.y.back() / unit.scale) - 7, &s);
  std::sort(ends.begin(), ends.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [y, s] : ends) {
    double ly = std::min(y, bottom - 6);
    ly = std::min(ly, last_label_y - 14);
    ly = std::max(ly, top + 12);
    last_label_y = ly;
    out += "<text x=\"" + num(px(static_cast<double>(s->y.size())) - 2) + "\" y=\"" + num(ly) +
           "\" text-anchor=\"end\" font-size=\"11\" font-weight=\"bold\" stroke=\"white\" "
           "stroke-width=\"3\" paint-order=\"stroke\" fill=\"" +
           escape(s->color) + "\">" +
           escape(p.bytes ? format_bytes(s->y.back()) : format_flops(s->y.back())) + "</text>\n";
  }
}

}  // namespace

std::string render_svg_chart(const std::string& title, const std::string& subtitle,
                             const std::string& x_label, const std::vector<ChartPanel>& panels) {
  check(!panels.empty(), "svg chart: no panels");
  const double width = kPanelW * static_cast<double>(panels.size());
  const double height = kTop + kPlotH + kBottom;
  std::string out;
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
         num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
         "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out += "<text x=\"" + num(width / 2) +
         "\" y=\"24\" text-anchor=\"middle\" font-size=\"17\" font-weight=\"bold\">" +
         escape(title) + "</text>\n";
  out += "<text x=\"" + num(width / 2) +
         "\" y=\"44\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">" + escape(subtitle) +
         "</text>\n";
  // One legend for all panels: they share their series names.
  const auto& legend = panels.front().series;
  const double item_w = 190;
  double lx = width / 2 - item_w * static_cast<double>(legend.size()) / 2;
  for (const auto& s : legend) {
    out += "<line x1=\"" + num(lx) + "\" y1=\"64\" x2=\"" + num(lx + 34) +
           "\" y2=\"64\" stroke=\"" + escape(s.color) + "\" stroke-width=\"2.5\"";
    if (s.dashed) out += " stroke-dasharray=\"7,4\"";
    out += "/>\n";
    out += "<text x=\"" + num(lx + 42) + "\" y=\"68\" font-size=\"12\">" + escape(s.name) +
           "</text>\n";
    lx += item_w;
  }
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(out, panels[i], kPanelW * static_cast<double>(i), x_label);
  out += "</svg>\n";
  return out;
}

std::string render_cost_svg(const std::string& model_name, const RunCost& cached,
                            const RunCost& uncached, DType weight_dtype) {
  const char* with = "#1f6fb4";
  const char* without = "#e0701a";
  ChartPanel flops{"Cumulative compute",
                   "cumulative FLOPs",
                   false,
                   {{"with KV cache", with, false, cached.cumulative_flops},
                    {"without KV cache", without, true, uncached.cumulative_flops}}};
  ChartPanel memory{"KV memory held",
                    "KV memory",
                    true,
                    {{"with KV cache", with, false, cached.kv_memory_bytes},
                     {"without KV cache", without, true, uncached.kv_memory_bytes}}};
  std::string title =
      model_name + ": cost of generating " + std::to_string(cached.new_tokens) + " tokens";
  std::string subtitle = "prompt " + std::to_string(cached.prompt) + " tokens, batch " +
                         std::to_string(cached.batch) + ", weights ";
  subtitle += dtype_name(weight_dtype);
  subtitle += ", KV f32; without the cache only one layer's K/V is held at a time";
  return render_svg_chart(title, subtitle, "generated tokens", {flops, memory});
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  check(out.good(), "cannot write " + path);
  out << text;
  out.flush();
  check(out.good(), "failed writing " + path);
}

}  // namespace nucleus::cost
