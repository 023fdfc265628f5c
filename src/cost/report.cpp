#include "cost/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "util/error.h"

namespace nucleus::cost {
namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Three significant digits with a unit prefix from `units` (each 'step' apart).
std::string scaled(double v, double step, const std::vector<const char*>& units) {
  size_t i = 0;
  double x = v;
  while (std::fabs(x) >= step && i + 1 < units.size()) {
    x /= step;
    ++i;
  }
  const int decimals = std::fabs(x) >= 100 || i == 0
                           ? (i == 0 && std::fabs(x - std::round(x)) < 1e-9 ? 0 : 1)
                           : (std::fabs(x) >= 10 ? 1 : 2);
  std::string s = fixed(x, decimals);
  s += " ";
  s += units[i];
  return s;
}

double bytes_per_weight(DType t) {
  const DTypeInfo& info = dtype_info(t);
  return static_cast<double>(info.block_bytes) / static_cast<double>(info.block_elems);
}

std::string pad_right(const std::string& s, size_t width) {
  // Count UTF-8 code points so 'ᵀ' and '·' take one column.
  size_t cols = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++cols;
  return cols >= width ? s : s + std::string(width - cols, ' ');
}

std::string pad_left(const std::string& s, size_t width) {
  size_t cols = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++cols;
  return cols >= width ? s : std::string(width - cols, ' ') + s;
}

constexpr size_t kLabel = 34;
constexpr size_t kCol = 19;

void row(std::string& out, const std::string& label, const std::string& a, const std::string& b) {
  out += "  ";
  out += pad_right(label, kLabel);
  out += pad_left(a, kCol);
  out += pad_left(b, kCol);
  out += "\n";
}

std::string bound_label(const PhaseCost& c, const MachinePeaks& peaks, DType dtype, int threads) {
  const double tc = c.total / std::max(peak_flops(peaks, dtype, threads), 1.0);
  const double tm = c.total_bytes() / std::max(peak_bandwidth(peaks, threads), 1.0);
  std::string s = format_seconds(std::max(tc, tm));
  s += tc >= tm ? " compute" : " memory";
  return s;
}

// The exact and generic columns of one phase.
void phase_table(std::string& out, const std::string& heading, const PhaseCost& c,
                 const GenericCost& g, const CostReport& r) {
  row(out, heading, "generic", "exact");
  auto pair = [&](const std::string& label, double generic, double exact, bool has_generic = true) {
    std::string e = format_flops(exact);
    row(out, label, has_generic ? format_flops(generic) : "-", e);
  };
  pair("attention Q projection", g.qkvo / 4, c.attn_q);
  pair("attention K projection", g.qkvo / 4, c.attn_k);
  pair("attention V projection", g.qkvo / 4, c.attn_v);
  pair("attention output projection", g.qkvo / 4, c.attn_o);
  pair("QKᵀ scores", g.attn / 2, c.attn_qk);
  pair("softmax·V", g.attn / 2, c.attn_av);
  pair("MLP gate", 0, c.mlp_gate, false);
  pair("MLP up", g.mlp / 2, c.mlp_up);
  pair("MLP down", g.mlp / 2, c.mlp_down);
  pair("lm_head", g.lm_head, c.lm_head);
  pair("remainder (norms, RoPE, softmax…)", 0, c.remainder, false);
  pair("total", g.total, c.total);
  row(out, "share of attention scores", fixed(100 * g.attn / g.total, 1) + "%",
      fixed(100 * c.attention_scores() / c.total, 1) + "%");
  row(out, "weights read", "", format_bytes(c.weight_bytes));
  row(out, "KV read / written", "",
      format_bytes(c.kv_read_bytes) + " / " + format_bytes(c.kv_write_bytes));
  row(out, "arithmetic intensity", "", fixed(c.arithmetic_intensity(), 1) + " FLOP/B");
  row(out, "roofline time (bound)", "", bound_label(c, r.peaks, r.weight_dtype, r.threads));
}

nlohmann::json phase_json(const PhaseCost& c, const CostReport& r) {
  return {
      {"flops",
       {{"attn_q", c.attn_q},
        {"attn_k", c.attn_k},
        {"attn_v", c.attn_v},
        {"attn_o", c.attn_o},
        {"attn_qk", c.attn_qk},
        {"attn_av", c.attn_av},
        {"mlp_gate", c.mlp_gate},
        {"mlp_up", c.mlp_up},
        {"mlp_down", c.mlp_down},
        {"lm_head", c.lm_head},
        {"remainder", c.remainder},
        {"total", c.total}}},
      {"weight_bytes", c.weight_bytes},
      {"kv_read_bytes", c.kv_read_bytes},
      {"kv_write_bytes", c.kv_write_bytes},
      {"kv_cache_bytes", c.kv_cache_bytes},
      {"arithmetic_intensity", c.arithmetic_intensity()},
      {"roofline_seconds", roofline_seconds(c, r.peaks, r.weight_dtype, r.threads)},
  };
}

nlohmann::json generic_json(const GenericCost& g) {
  return {{"qkvo", g.qkvo},           {"mlp", g.mlp},       {"attn", g.attn},
          {"per_layer", g.per_layer}, {"layers", g.layers}, {"lm_head", g.lm_head},
          {"total", g.total}};
}

nlohmann::json run_json(const RunCost& run, const CostReport& r) {
  nlohmann::json j = phase_json(run.total, r);
  j["kv_memory_peak_bytes"] = run.total.kv_cache_bytes;
  j.erase("kv_cache_bytes");
  j["series"] = {{"step_flops", run.step_flops},
                 {"cumulative_flops", run.cumulative_flops},
                 {"cumulative_bytes", run.cumulative_bytes},
                 {"kv_memory_bytes", run.kv_memory_bytes}};
  return j;
}

}  // namespace

std::string format_flops(double flops) {
  return scaled(flops, 1000, {"FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"});
}

std::string format_bytes(double bytes) {
  return scaled(bytes, 1024, {"B", "KiB", "MiB", "GiB", "TiB", "PiB"});
}

std::string format_seconds(double seconds) {
  if (seconds >= 2 * 86400) return fixed(seconds / 86400, 1) + " days";
  if (seconds >= 2 * 3600) return fixed(seconds / 3600, 1) + " h";
  if (seconds >= 1) return fixed(seconds, seconds >= 100 ? 0 : 2) + " s";
  if (seconds >= 1e-3) return fixed(seconds * 1e3, seconds >= 0.1 ? 0 : 2) + " ms";
  return fixed(seconds * 1e6, 1) + " µs";
}

double roofline_seconds(const PhaseCost& c, const MachinePeaks& peaks, DType weight_dtype,
                        int threads) {
  const double pf = peak_flops(peaks, weight_dtype, threads);
  const double bw = peak_bandwidth(peaks, threads);
  const double tc = pf > 0 ? c.total / pf : 0;
  const double tm = bw > 0 ? c.total_bytes() / bw : 0;
  return std::max(tc, tm);
}

CostReport make_report(const std::string& model_name, const ModelConfig& cfg, DType weight_dtype,
                       int64_t prompt, int64_t new_tokens, int64_t batch, bool kv_cache,
                       const MachinePeaks& peaks, int threads) {
  CostReport r;
  r.model_name = model_name;
  r.config = cfg;
  r.weight_dtype = weight_dtype;
  r.batch = batch;
  r.prompt = prompt;
  r.new_tokens = new_tokens;
  r.kv_cache = kv_cache;
  r.threads = std::max(threads, 1);
  r.peaks = peaks;
  r.prefill = prefill_cost(cfg, weight_dtype, batch, prompt, 1);
  r.prefill_generic = generic_cost(cfg, batch, prompt, prompt, 1);
  // The last step of the run (with one new token, the step that would come next).
  r.decode_context = prompt + std::max<int64_t>(new_tokens - 1, 1);
  if (kv_cache) {
    r.decode = decode_step_cost(cfg, weight_dtype, batch, r.decode_context);
    r.decode_generic = generic_cost(cfg, batch, 1, r.decode_context, 1);
  } else {
    r.decode = prefill_cost(cfg, weight_dtype, batch, r.decode_context, 1);
    r.decode_generic = generic_cost(cfg, batch, r.decode_context, r.decode_context, 1);
  }
  r.run_cached = run_cost(cfg, weight_dtype, prompt, new_tokens, batch, true);
  r.run_uncached = run_cost(cfg, weight_dtype, prompt, new_tokens, batch, false);
  return r;
}

std::string render_text(const CostReport& r) {
  const ModelConfig& c = r.config;
  std::string out;
  out += "nucleus cost: " + r.model_name + "\n";
  out += "  shape: dim " + std::to_string(c.dim) + ", " + std::to_string(c.n_layers) + " layers, " +
         std::to_string(c.n_heads) + " heads (" + std::to_string(c.n_kv_heads) + " KV, head_dim " +
         std::to_string(c.head_dim) + "), FFN " + std::to_string(c.ffn_dim) + ", vocab " +
         std::to_string(c.vocab_size) + ", context " + std::to_string(c.context_length) + "\n";
  out += "  weights ";
  out += dtype_name(r.weight_dtype);
  char bpw[32];
  std::snprintf(bpw, sizeof bpw, "%g", bytes_per_weight(r.weight_dtype));
  out += " (";
  out += bpw;
  out += " B/weight incl. block scales), KV cache f32, batch " + std::to_string(r.batch) +
         ", prompt " + std::to_string(r.prompt) + ", new tokens " + std::to_string(r.new_tokens) +
         "\n";
  out +=
      "  FLOPs: multiply-add = 2; exact column counts causal attention's unmasked scores only and\n"
      "  logits only where needed; generic = 24·b·s·h² + 4·b·s²·h per layer (MHA, 4h MLP, full "
      "s²,\n"
      "  no mask) + 2·b·h·vocab per logits row\n\n";

  phase_table(out, "Prefill: " + std::to_string(r.prompt) + " tokens, logits 1 row", r.prefill,
              r.prefill_generic, r);
  out += "\n";
  std::string decode_heading =
      r.kv_cache ? "Decode step at context " : "No-cache step: full pass over ";
  decode_heading += std::to_string(r.decode_context);
  phase_table(out, decode_heading, r.decode, r.decode_generic, r);
  out += "\n";

  const PhaseCost& a = r.run_cached.total;
  const PhaseCost& b = r.run_uncached.total;
  row(out,
      "Whole run: " + std::to_string(r.prompt) + " + " + std::to_string(r.new_tokens) + " tokens",
      r.kv_cache ? "* KV cache" : "KV cache", r.kv_cache ? "no KV cache" : "* no KV cache");
  row(out, "FLOPs", format_flops(a.total), format_flops(b.total));
  row(out, "weights read", format_bytes(a.weight_bytes), format_bytes(b.weight_bytes));
  row(out, "KV read", format_bytes(a.kv_read_bytes), format_bytes(b.kv_read_bytes));
  row(out, "KV written", format_bytes(a.kv_write_bytes), format_bytes(b.kv_write_bytes));
  row(out, "KV memory, peak", format_bytes(a.kv_cache_bytes),
      format_bytes(b.kv_cache_bytes) + " †");
  row(out, "arithmetic intensity", fixed(a.arithmetic_intensity(), 1) + " FLOP/B",
      fixed(b.arithmetic_intensity(), 1) + " FLOP/B");
  row(out, "roofline time (bound)", bound_label(a, r.peaks, r.weight_dtype, r.threads),
      bound_label(b, r.peaks, r.weight_dtype, r.threads));
  row(out, "FLOPs relative to KV cache", "1.00x", fixed(b.total / std::max(a.total, 1.0), 2) + "x");
  out += "  † without the cache nothing persists between steps; the peak is one layer's K and V\n";
  out += "    for the longest pass.\n\n";

  const MachinePeaks& p = r.peaks;
  out += "Roofline peaks: read " + fixed(peak_bandwidth(p, r.threads) / 1e9, 1) + " GB/s, ";
  out += dtype_name(r.weight_dtype);
  out += " matmul " + fixed(peak_flops(p, r.weight_dtype, r.threads) / 1e9, 1) + " GFLOP/s at " +
         std::to_string(r.threads) + " thread";
  out += r.threads > 1 ? "s" : "";
  out += "\n  source: " + p.source + "\n";
  return out;
}

nlohmann::json to_json(const CostReport& r) {
  const ModelConfig& c = r.config;
  nlohmann::json j;
  j["model"] = {{"name", r.model_name},
                {"dim", c.dim},
                {"n_layers", c.n_layers},
                {"n_heads", c.n_heads},
                {"n_kv_heads", c.n_kv_heads},
                {"head_dim", c.head_dim},
                {"ffn_dim", c.ffn_dim},
                {"vocab_size", c.vocab_size},
                {"context_length", c.context_length}};
  j["weight_dtype"] = dtype_name(r.weight_dtype);
  j["bytes_per_weight"] = bytes_per_weight(r.weight_dtype);
  j["kv_dtype"] = "f32";
  j["batch"] = r.batch;
  j["prompt_tokens"] = r.prompt;
  j["new_tokens"] = r.new_tokens;
  j["kv_cache"] = r.kv_cache;
  j["convention"] =
      "multiply-add = 2 FLOPs; exact counts causal attention's unmasked scores only "
      "(prefill QK^T per layer per head = head_dim*s*(s+1)) and logits only for rows that need "
      "them; "
      "generic = 24*b*s*h^2 + 4*b*s^2*h per layer (MHA, 4h two-matrix MLP, full s^2, no mask) "
      "+ 2*b*h*vocab per logits row";
  j["prefill"] = {{"tokens", r.prompt},
                  {"logits_rows", 1},
                  {"exact", phase_json(r.prefill, r)},
                  {"generic", generic_json(r.prefill_generic)}};
  j["decode_step"] = {{"context", r.decode_context},
                      {"kv_cache", r.kv_cache},
                      {"exact", phase_json(r.decode, r)},
                      {"generic", generic_json(r.decode_generic)}};
  j["run"] = {{"kv_cache", run_json(r.run_cached, r)},
              {"no_kv_cache", run_json(r.run_uncached, r)}};
  const MachinePeaks& p = r.peaks;
  j["peaks"] = {{"source", p.source},
                {"threads_used", r.threads},
                {"read_bytes_per_s", peak_bandwidth(p, r.threads)},
                {"matmul_flops_per_s", peak_flops(p, r.weight_dtype, r.threads)},
                {"measured_threads", p.threads},
                {"isa", p.isa}};
  return j;
}

std::string render_json(const CostReport& r) {
  return to_json(r).dump(2);
}

}  // namespace nucleus::cost
