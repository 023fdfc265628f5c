#pragma once
// `nucleus cost` output: the analytic costs of one model and workload, as a
// text table and as JSON, with roofline time estimates from the machine peaks.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "cost/cost.h"
#include "cost/probe.h"

namespace nucleus::cost {

struct CostReport {
  std::string model_name;
  ModelConfig config;
  DType weight_dtype = DType::F32;
  int64_t batch = 1;
  int64_t prompt = 0;
  int64_t new_tokens = 0;
  bool kv_cache = true;  // the mode the decode-step section describes
  int threads = 1;       // for the peaks used by the roofline estimates

  PhaseCost prefill;  // the prompt, logits for the last row
  GenericCost prefill_generic;
  int64_t decode_context = 0;  // the last step's context length
  PhaseCost decode;            // one step at decode_context (without cache: a full pass)
  GenericCost decode_generic;
  RunCost run_cached;
  RunCost run_uncached;
  MachinePeaks peaks;
};

// Computes every section. Throws Error on invalid shapes or sizes.
CostReport make_report(const std::string& model_name, const ModelConfig& cfg, DType weight_dtype,
                       int64_t prompt, int64_t new_tokens, int64_t batch, bool kv_cache,
                       const MachinePeaks& peaks, int threads);

std::string render_text(const CostReport& r);
nlohmann::json to_json(const CostReport& r);
std::string render_json(const CostReport& r);  // to_json(r).dump(2)

// Lower bound on time from the peaks: max(FLOPs / peak FLOP/s, bytes / bandwidth).
double roofline_seconds(const PhaseCost& c, const MachinePeaks& peaks, DType weight_dtype,
                        int threads);

// "1.23 GFLOP", "512.0 MiB", "3.4 ms": SI for FLOPs and time, binary for bytes.
std::string format_flops(double flops);
std::string format_bytes(double bytes);
std::string format_seconds(double seconds);

}  // namespace nucleus::cost
