// The analytic cost model against hand calculations written out below, the
// lecture's generic formula, and published parameter counts; the report, SVG
// chart and probe cache for structure and round trips.
#include "cost/cost.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cost/probe.h"
#include "cost/report.h"
#include "cost/svg_chart.h"
#include "util/error.h"

namespace nucleus::cost {
namespace {

ModelConfig mha_config(int64_t h, int64_t layers) {
  ModelConfig c;
  c.dim = h;
  c.n_layers = layers;
  c.n_heads = 4;
  c.n_kv_heads = 4;  // MHA
  c.head_dim = h / 4;
  c.ffn_dim = 4 * h;
  c.vocab_size = 100;
  c.context_length = 4096;
  return c;
}

// stories260K: dim 64, 5 layers, 8 heads, 4 KV heads, head_dim 8 (kv_dim 32),
// FFN 172, vocab 512.
ModelConfig stories260k() {
  return named_shape("stories260k");
}

TEST(CostGeneric, PerLayerFormulaForSeveralShapes) {
  for (int64_t h : {64, 256, 4096}) {
    for (int64_t b : {1, 3}) {
      for (int64_t s : {1, 7, 512}) {
        const ModelConfig cfg = mha_config(h, 6);
        const GenericCost g = generic_cost(cfg, b, s, s, 1);
        const double bd = static_cast<double>(b), sd = static_cast<double>(s),
                     hd = static_cast<double>(h);
        const double formula = 24 * bd * sd * hd * hd + 4 * bd * sd * sd * hd;
        EXPECT_DOUBLE_EQ(g.per_layer, formula) << "b=" << b << " s=" << s << " h=" << h;
        EXPECT_DOUBLE_EQ(g.layers, 6 * formula);
        // The parts: QKV+O 8bsh², MLP 16bsh², QKᵀ + AV 4bs²h, each over 6 layers.
        EXPECT_DOUBLE_EQ(g.qkvo, 6 * 8 * bd * sd * hd * hd);
        EXPECT_DOUBLE_EQ(g.mlp, 6 * 16 * bd * sd * hd * hd);
        EXPECT_DOUBLE_EQ(g.attn, 6 * 4 * bd * sd * sd * hd);
        EXPECT_DOUBLE_EQ(g.qkvo + g.mlp + g.attn, g.layers);
        EXPECT_DOUBLE_EQ(g.lm_head, 2 * bd * hd * 100);
        EXPECT_DOUBLE_EQ(g.total, g.layers + g.lm_head);
      }
    }
  }
}

TEST(CostGeneric, DecodeStepIsOneRowAgainstTheContext) {
  const ModelConfig cfg = mha_config(128, 2);
  const GenericCost g = generic_cost(cfg, 2, 1, 300, 1);
  // 24·b·h² + 4·b·c·h with b = 2, c = 300, h = 128.
  EXPECT_DOUBLE_EQ(g.per_layer, 24.0 * 2 * 128 * 128 + 4.0 * 2 * 300 * 128);
}

TEST(CostExact, RelatesToGenericForMha) {
  // For MHA the four projections are exactly the generic 8bsh²; causal masking
  // keeps (s+1)/(2s) of the generic s² attention; SwiGLU at ffn = 4h has three
  // matrices where the generic MLP has two.
  const int64_t b = 2, s = 10, h = 64;
  const ModelConfig cfg = mha_config(h, 3);
  const PhaseCost e = prefill_cost(cfg, DType::F32, b, s, 1);
  const GenericCost g = generic_cost(cfg, b, s, s, 1);
  EXPECT_DOUBLE_EQ(e.attention_projections(), g.qkvo);
  EXPECT_DOUBLE_EQ(e.attention_scores(), g.attn * (s + 1) / (2.0 * s));
  EXPECT_DOUBLE_EQ(e.mlp(), g.mlp * 3 / 2);
  EXPECT_DOUBLE_EQ(e.lm_head, g.lm_head);
}

TEST(CostExact, Stories260kPrefillByHand) {
  // Prefill of s = 4 tokens, batch 1, logits for the last row only.
  const PhaseCost c = prefill_cost(stories260k(), DType::F32, 1, 4, 1);
  // Projections: layers · 2 · rows · in · out.
  EXPECT_DOUBLE_EQ(c.attn_q, 5.0 * 2 * 4 * 64 * 64);  // 163840
  EXPECT_DOUBLE_EQ(c.attn_k, 5.0 * 2 * 4 * 64 * 32);  // 81920
  EXPECT_DOUBLE_EQ(c.attn_v, 5.0 * 2 * 4 * 64 * 32);  // 81920
  EXPECT_DOUBLE_EQ(c.attn_o, 5.0 * 2 * 4 * 64 * 64);  // 163840
  // QKᵀ per layer per head: head_dim · s(s+1) = 8 · 4 · 5 = 160 (rows attend to
  // 1, 2, 3, 4 positions: 2·8·(1+2+3+4) = 160); 8 heads, 5 layers.
  EXPECT_DOUBLE_EQ(c.attn_qk, 5.0 * 8 * 160);            // 6400
  EXPECT_DOUBLE_EQ(c.attn_av, 5.0 * 8 * 160);            // 6400
  EXPECT_DOUBLE_EQ(c.mlp_gate, 5.0 * 2 * 4 * 64 * 172);  // 440320
  EXPECT_DOUBLE_EQ(c.mlp_up, 5.0 * 2 * 4 * 64 * 172);
  EXPECT_DOUBLE_EQ(c.mlp_down, 5.0 * 2 * 4 * 172 * 64);
  EXPECT_DOUBLE_EQ(c.lm_head, 2.0 * 1 * 64 * 512);  // 65536
  // Remainder per row per layer: two RMSNorms 2·4·64 = 512, RoPE on q and k
  // 3·(64+32) = 288, SwiGLU 5·172 = 860, two residual adds 2·64 = 128: 1788.
  // Four rows, five layers: 35760. Softmax 5 per score, 8 heads · 10 scores ·
  // 5 layers = 400 scores: 2000. Final norm on the one logits row: 4·64 = 256.
  EXPECT_DOUBLE_EQ(c.remainder, 35760.0 + 2000 + 256);  // 38016
  // 2·163840 + 2·81920 + 2·6400 + 3·440320 + 65536 + 38016.
  EXPECT_DOUBLE_EQ(c.total, 1928832.0);
  // KV written: 2 (K, V) · 5 layers · 4 positions · 32 · 4 bytes.
  EXPECT_DOUBLE_EQ(c.kv_write_bytes, 2.0 * 5 * 4 * 32 * 4);  // 5120
  // KV read: rows stream 1+2+3+4 = 10 positions of K and V, once per KV head.
  EXPECT_DOUBLE_EQ(c.kv_read_bytes, 2.0 * 5 * 10 * 32 * 4);  // 12800
}

TEST(CostExact, Stories260kDecodeStepByHand) {
  // Batch 2, a new token at position 5 (context 6, itself included).
  const PhaseCost c = decode_step_cost(stories260k(), DType::F32, 2, 6);
  EXPECT_DOUBLE_EQ(c.attn_q, 5.0 * 2 * 2 * 64 * 64);  // 81920
  EXPECT_DOUBLE_EQ(c.attn_k, 5.0 * 2 * 2 * 64 * 32);  // 40960
  EXPECT_DOUBLE_EQ(c.attn_v, 5.0 * 2 * 2 * 64 * 32);
  EXPECT_DOUBLE_EQ(c.attn_o, 5.0 * 2 * 2 * 64 * 64);
  // 2·head_dim·context per head: 2·8·6 = 96; 8 heads, batch 2, 5 layers.
  EXPECT_DOUBLE_EQ(c.attn_qk, 5.0 * 2 * 8 * 96);  // 7680
  EXPECT_DOUBLE_EQ(c.attn_av, 5.0 * 2 * 8 * 96);
  EXPECT_DOUBLE_EQ(c.mlp_gate, 5.0 * 2 * 2 * 64 * 172);  // 220160
  EXPECT_DOUBLE_EQ(c.mlp_up, 5.0 * 2 * 2 * 64 * 172);
  EXPECT_DOUBLE_EQ(c.mlp_down, 5.0 * 2 * 2 * 172 * 64);
  EXPECT_DOUBLE_EQ(c.lm_head, 2.0 * 2 * 64 * 512);  // 131072
  // 2 rows · 5 layers · 1788 = 17880; softmax 5 · (2·8·6 scores · 5 layers) =
  // 2400; final norm 2 rows · 256 = 512.
  EXPECT_DOUBLE_EQ(c.remainder, 17880.0 + 2400 + 512);  // 20792
  // 2·81920 + 2·40960 + 2·7680 + 3·220160 + 131072 + 20792.
  EXPECT_DOUBLE_EQ(c.total, 1073464.0);
  // f32 weights per layer: q, o 64·64·4 = 16384 each; k, v 32·64·4 = 8192 each;
  // gate, up, down 172·64·4 = 44032 each; two norms 2·64·4 = 512: 181760.
  // Five layers 908800 + two embedding rows 512 + output norm 256 + lm_head
  // 512·64·4 = 131072.
  EXPECT_DOUBLE_EQ(c.weight_bytes, 908800.0 + 512 + 256 + 131072);  // 1040640
  EXPECT_DOUBLE_EQ(c.kv_read_bytes, 5.0 * 2 * 2 * 32 * 4 * 6);      // 15360
  EXPECT_DOUBLE_EQ(c.kv_write_bytes, 5.0 * 2 * 2 * 32 * 4);         // 2560
  EXPECT_DOUBLE_EQ(c.kv_cache_bytes, 2.0 * 5 * 6 * 32 * 4 * 2);     // 15360
  EXPECT_DOUBLE_EQ(c.arithmetic_intensity(), 1073464.0 / (1040640.0 + 15360 + 2560));
}

TEST(CostExact, PrefillEqualsSumOfDecodeStepsBelowTheHead) {
  // A prefill of s rows does, layer by layer, what s decode steps at contexts
  // 1..s do; only the logits differ (one row against s).
  const ModelConfig cfg = stories260k();
  const int64_t s = 9;
  const PhaseCost p = prefill_cost(cfg, DType::F32, 1, s, 0);
  double qk = 0, proj = 0, mlp = 0, rem = 0;
  for (int64_t c = 1; c <= s; ++c) {
    const PhaseCost d = decode_step_cost(cfg, DType::F32, 1, c);
    qk += d.attn_qk;
    proj += d.attention_projections();
    mlp += d.mlp();
    rem += d.remainder - 4.0 * 64;  // less the final norm of its logits row
  }
  EXPECT_DOUBLE_EQ(p.attn_qk, qk);
  EXPECT_DOUBLE_EQ(p.attention_projections(), proj);
  EXPECT_DOUBLE_EQ(p.mlp(), mlp);
  EXPECT_DOUBLE_EQ(p.remainder, rem);
  EXPECT_DOUBLE_EQ(p.lm_head, 0);
}

TEST(CostExact, WeightBytesMatchPublishedParameterCounts) {
  // Published totals: TinyLlama-1.1B 1,100,048,384; Llama-2-7B 6,738,415,616;
  // Meta-Llama-3-8B 8,030,261,248 parameters (all untied). A decode step reads
  // every weight once except the embedding table, of which it gathers one row.
  struct Case {
    const char* name;
    double params;
  };
  for (const Case& k : {Case{"tinyllama-1.1b", 1100048384.0}, Case{"llama-7b", 6738415616.0},
                        Case{"llama3-8b", 8030261248.0}}) {
    const ModelConfig cfg = named_shape(k.name);
    const PhaseCost d = decode_step_cost(cfg, DType::F32, 1, 1);
    const double embedding = static_cast<double>(cfg.vocab_size * cfg.dim);
    EXPECT_DOUBLE_EQ(d.weight_bytes / 4 + embedding - static_cast<double>(cfg.dim), k.params)
        << k.name;
  }
}

TEST(CostExact, QuantizedBytesIncludeBlockScales) {
  // Q8_0: 32 weights in 34 bytes; Q4_0: 32 in 18; rows pad to whole blocks.
  EXPECT_EQ(matrix_bytes(DType::Q8_0, 10, 64), 10 * 2 * 34);
  EXPECT_EQ(matrix_bytes(DType::Q4_0, 10, 64), 10 * 2 * 18);
  EXPECT_EQ(matrix_bytes(DType::Q4_0, 3, 172), 3 * 6 * 18);  // 172 = 5 blocks + 12
  EXPECT_EQ(matrix_bytes(DType::F16, 3, 7), 3 * 7 * 2);
  EXPECT_EQ(matrix_bytes(DType::BF16, 3, 7), 3 * 7 * 2);
  EXPECT_EQ(matrix_bytes(DType::F32, 3, 7), 3 * 7 * 4);
  // A tinyllama decode step at Q8_0: of its 1,100,048,384 parameters, the
  // 2·22+1 norm vectors of 2048 stay f32; the matrices (all but the 32000x2048
  // embedding) take 34/32 bytes each, plus the one gathered embedding row.
  const PhaseCost d = decode_step_cost(named_shape("tinyllama-1.1b"), DType::Q8_0, 1, 1);
  const double norms = 45.0 * 2048;
  const double matrices = 1100048384.0 - 32000.0 * 2048 - norms;
  EXPECT_DOUBLE_EQ(d.weight_bytes, (matrices + 2048) * 34 / 32 + norms * 4);
}

TEST(CostKv, CacheBytes) {
  const ModelConfig cfg = stories260k();  // kv_dim 32, 5 layers
  for (int64_t s : {1, 17, 512})
    for (int64_t b : {1, 4}) EXPECT_EQ(kv_cache_bytes(cfg, s, b), 2 * 5 * s * 32 * 4 * b);
  const ModelConfig tl = named_shape("tinyllama-1.1b");  // kv_dim 4·64 = 256, 22 layers
  EXPECT_EQ(kv_cache_bytes(tl, 2048, 1), int64_t{2} * 22 * 2048 * 256 * 4);  // 88 MiB
}

// Differences of a series.
std::vector<double> diff(const std::vector<double>& v) {
  std::vector<double> d;
  for (size_t i = 1; i < v.size(); ++i) d.push_back(v[i] - v[i - 1]);
  return d;
}

TEST(CostRun, CachedGrowsLinearlyUncachedQuadratically) {
  const ModelConfig cfg = stories260k();
  for (int64_t prompt : {1, 16, 100}) {
    const RunCost with = run_cost(cfg, DType::F32, prompt, 40, 1, true);
    const RunCost without = run_cost(cfg, DType::F32, prompt, 40, 1, false);
    ASSERT_EQ(with.cumulative_flops.size(), 40u);
    ASSERT_EQ(without.cumulative_flops.size(), 40u);
    // The first token costs the same either way: one pass over the prompt.
    EXPECT_DOUBLE_EQ(with.cumulative_flops[0], without.cumulative_flops[0]);

    // With the cache each step grows only by one more attended position:
    // 5 layers · 8 heads · (QKᵀ 2·8 + AV 2·8 + softmax 5) = 1480 FLOPs, against
    // a step of over 500k FLOPs, so the cumulative curve is linear to 0.3%.
    const auto d2_with = diff(diff(with.cumulative_flops));
    for (size_t i = 0; i < d2_with.size(); ++i)
      EXPECT_DOUBLE_EQ(d2_with[i], 5.0 * 8 * (16 + 16 + 5));
    const auto d1_with = diff(with.cumulative_flops);
    for (double d : d1_with) EXPECT_LT(5.0 * 8 * 37 / d, 0.003);

    // Without it the second difference is a whole extra token's pass (a decode
    // step's work below the head), so the cumulative curve is quadratic; its
    // own increments are again the 1480 FLOPs of one more attended position.
    const auto d2_without = diff(diff(without.cumulative_flops));
    for (size_t i = 0; i < d2_without.size(); ++i) {
      const int64_t ctx = prompt + static_cast<int64_t>(i) + 2;
      const PhaseCost step = decode_step_cost(cfg, DType::F32, 1, ctx);
      EXPECT_DOUBLE_EQ(d2_without[i], step.total - step.lm_head - 4.0 * 64);
      EXPECT_GT(d2_without[i], 0.8 * d1_with[0]);
    }
    for (double d3 : diff(d2_without)) EXPECT_DOUBLE_EQ(d3, 5.0 * 8 * 37);
  }
}

TEST(CostRun, KvMemorySeries) {
  const ModelConfig cfg = stories260k();
  const RunCost with = run_cost(cfg, DType::F32, 10, 5, 2, true);
  const RunCost without = run_cost(cfg, DType::F32, 10, 5, 2, false);
  for (int64_t k = 1; k <= 5; ++k) {
    // Token k is produced once prompt + k - 1 positions are known.
    EXPECT_DOUBLE_EQ(with.kv_memory_bytes[k - 1], 2.0 * 5 * (10 + k - 1) * 32 * 4 * 2);
    EXPECT_DOUBLE_EQ(without.kv_memory_bytes[k - 1], 2.0 * (10 + k - 1) * 32 * 4 * 2);  // one layer
  }
  EXPECT_DOUBLE_EQ(with.total.kv_cache_bytes, 2.0 * 5 * 14 * 32 * 4 * 2);
  // The cache writes each position once: 14 positions.
  EXPECT_DOUBLE_EQ(with.total.kv_write_bytes, 2.0 * 5 * 14 * 32 * 4 * 2);
}

TEST(CostErrors, BadInputThrows) {
  const ModelConfig cfg = stories260k();
  EXPECT_THROW(prefill_cost(cfg, DType::F32, 1, 0, 0), Error);
  EXPECT_THROW(prefill_cost(cfg, DType::F32, 0, 4, 1), Error);
  EXPECT_THROW(prefill_cost(cfg, DType::F32, 1, 4, 5), Error);
  EXPECT_THROW(decode_step_cost(cfg, DType::F32, 1, 0), Error);
  EXPECT_THROW(run_cost(cfg, DType::F32, 4, 0, 1, true), Error);
  EXPECT_THROW(named_shape("gpt-2"), Error);
  ModelConfig bad = cfg;
  bad.n_kv_heads = 3;
  EXPECT_THROW(prefill_cost(bad, DType::F32, 1, 4, 1), Error);
  EXPECT_EQ(named_shape("TinyLlama-1.1B").dim, 2048);
}

MachinePeaks fixed_peaks() {
  MachinePeaks p;
  p.threads = 2;
  p.read_bw = {10e9, 20e9};
  p.fma_f32 = {100e9, 200e9};
  p.dot_bf16 = {150e9, 300e9};
  p.dot_int8 = {400e9, 800e9};
  p.isa = "avx512";
  p.measured_at = "2026-01-01 00:00 UTC";
  p.source = "measured " + p.measured_at;
  return p;
}

TEST(CostReport, TextAndJson) {
  const ModelConfig cfg = named_shape("tinyllama-1.1b");
  const CostReport r =
      make_report("tinyllama-1.1b", cfg, DType::Q8_0, 512, 128, 1, true, fixed_peaks(), 2);
  const std::string text = render_text(r);
  for (const char* needle : {"Prefill: 512 tokens", "Decode step at context 639", "QKᵀ scores",
                             "MLP gate", "lm_head", "KV memory, peak", "generic", "exact", "q8_0"})
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
  const nlohmann::json j = nlohmann::json::parse(render_json(r));
  EXPECT_DOUBLE_EQ(j["prefill"]["exact"]["flops"]["total"].get<double>(), r.prefill.total);
  EXPECT_DOUBLE_EQ(j["prefill"]["generic"]["total"].get<double>(), r.prefill_generic.total);
  EXPECT_EQ(j["decode_step"]["context"].get<int64_t>(), 639);
  EXPECT_EQ(j["run"]["kv_cache"]["series"]["cumulative_flops"].size(), 128u);
  EXPECT_DOUBLE_EQ(j["bytes_per_weight"].get<double>(), 34.0 / 32);
  EXPECT_DOUBLE_EQ(j["peaks"]["matmul_flops_per_s"].get<double>(), 800e9);  // int8 for q8_0
  // BF16 weights run through FMAs (widened to F32), so FMA is their bound.
  const CostReport rb =
      make_report("tinyllama-1.1b", cfg, DType::BF16, 512, 128, 1, true, fixed_peaks(), 2);
  EXPECT_DOUBLE_EQ(
      nlohmann::json::parse(render_json(rb))["peaks"]["matmul_flops_per_s"].get<double>(), 200e9);
  // KV memory after the run: 639 positions of 22 layers · 256 · 4 bytes · 2.
  EXPECT_DOUBLE_EQ(j["run"]["kv_cache"]["kv_memory_peak_bytes"].get<double>(),
                   2.0 * 22 * 639 * 256 * 4);
}

TEST(CostReport, Formatting) {
  EXPECT_EQ(format_flops(1.5e9), "1.50 GFLOP");
  EXPECT_EQ(format_flops(146.8e12), "146.8 TFLOP");
  EXPECT_EQ(format_bytes(1024.0 * 1024 * 27.5), "27.5 MiB");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_seconds(0.26), "260 ms");
}

// Checks that every element opened is closed in order; enough to catch broken
// markup from string building (the chart has no comments or CDATA).
bool balanced_xml(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = s.find('<', i)) != std::string::npos) {
    const size_t end = s.find('>', i);
    if (end == std::string::npos) return false;
    std::string tag = s.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty() || tag[0] == '?') continue;
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return false;
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
  }
  return stack.empty();
}

TEST(CostSvg, WellFormedWithAxesAndLegend) {
  const ModelConfig cfg = named_shape("tinyllama-1.1b");
  const RunCost with = run_cost(cfg, DType::F32, 512, 128, 1, true);
  const RunCost without = run_cost(cfg, DType::F32, 512, 128, 1, false);
  const std::string svg = render_cost_svg("tinyllama-1.1b", with, without, DType::F32);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_TRUE(balanced_xml(svg));
  for (const char* needle :
       {"generated tokens", "with KV cache", "without KV cache", "cumulative FLOPs (TFLOP)",
        "KV memory (MiB)", "tinyllama-1.1b: cost of generating 128 tokens"})
    EXPECT_NE(svg.find(needle), std::string::npos) << needle;
  // Two series per panel.
  size_t polylines = 0;
  for (size_t i = 0; (i = svg.find("<polyline", i)) != std::string::npos; ++i) ++polylines;
  EXPECT_EQ(polylines, 4u);
  // Text is escaped.
  const std::string esc = render_svg_chart(
      "a<b & c", "", "x", {ChartPanel{"p", "q", false, {{"s", "red", false, {1, 2}}}}});
  EXPECT_NE(esc.find("a&lt;b &amp; c"), std::string::npos);
  EXPECT_TRUE(balanced_xml(esc));
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("nucleus_cost_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

TEST(CostProbe, CacheRoundTripAndBadFiles) {
  TempDir dir;
  const MachinePeaks p = fixed_peaks();
  const std::string path = dir.file("sub/peaks.json");
  save_peaks(p, path);
  const MachinePeaks q = load_peaks(path);
  EXPECT_DOUBLE_EQ(q.read_bw.one, 10e9);
  EXPECT_DOUBLE_EQ(q.dot_int8.all, 800e9);
  EXPECT_EQ(q.threads, 2);
  EXPECT_EQ(q.source.rfind("cached (measured 2026-01-01 00:00 UTC", 0), 0u) << q.source;
  EXPECT_EQ(cached_or_default_peaks(path).source, q.source);

  EXPECT_EQ(cached_or_default_peaks(dir.file("absent.json")).source.rfind("default", 0), 0u);
  const std::string bad = dir.file("bad.json");
  std::ofstream(bad)
      << R"({"version": 1, "threads": 2, "read_bytes_per_s": {"one_thread": "fast"}})";
  try {
    load_peaks(bad);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("read_bytes_per_s.one_thread"), std::string::npos)
        << e.what();
  }
  const MachinePeaks d = cached_or_default_peaks(bad);
  EXPECT_NE(d.source.find("ignored unreadable cache"), std::string::npos);
  EXPECT_GT(d.fma_f32.one, 0);
  std::ofstream(dir.file("junk.json")) << "not json";
  EXPECT_THROW(load_peaks(dir.file("junk.json")), Error);
}

TEST(CostProbe, UtilisationPicksThePeakForTheDtype) {
  const MachinePeaks p = fixed_peaks();
  EXPECT_DOUBLE_EQ(mfu(50e9, p, DType::F32, 1), 0.5);   // FMA, one thread
  EXPECT_DOUBLE_EQ(mfu(50e9, p, DType::F16, 2), 0.25);  // FMA, all threads
  EXPECT_DOUBLE_EQ(mfu(75e9, p, DType::BF16, 1), 0.75);  // FMA: BF16 is widened to F32
  EXPECT_DOUBLE_EQ(mfu(200e9, p, DType::Q8_0, 1), 0.5);
  EXPECT_DOUBLE_EQ(mfu(200e9, p, DType::Q4_0, 2), 0.25);
  EXPECT_DOUBLE_EQ(mbu(5e9, p, 1), 0.5);
  EXPECT_DOUBLE_EQ(mbu(5e9, p, 2), 0.25);
  // A decode step of tinyllama f32 is memory-bound: roofline = bytes / bandwidth.
  const PhaseCost d = decode_step_cost(named_shape("tinyllama-1.1b"), DType::F32, 1, 100);
  EXPECT_DOUBLE_EQ(roofline_seconds(d, p, DType::F32, 1), d.total_bytes() / 10e9);
}

TEST(CostProbe, MeasuresPositiveRatesQuickly) {
  ProbeOptions o;
  o.threads = 1;
  o.bandwidth_bytes = 16 << 20;
  o.seconds_per_test = 0.01;
  const MachinePeaks p = measure_peaks(o);
  EXPECT_GT(p.read_bw.one, 1e8);
  EXPECT_GT(p.fma_f32.one, 1e9);
  EXPECT_GT(p.dot_bf16.one, 1e9);
  EXPECT_GT(p.dot_int8.one, 1e9);
  EXPECT_EQ(p.source.rfind("measured ", 0), 0u);
}

}  // namespace
}  // namespace nucleus::cost
