#include "serve/metrics.h"

#include <cstdio>

namespace nucleus::serve {

Histogram::Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}

void Histogram::observe(double v) {
  for (size_t i = 0; i < bounds.size(); ++i)
    if (v <= bounds[i]) ++counts[i];
  ++counts.back();
  sum += v;
  ++count;
}

MetricsSnapshot::MetricsSnapshot()
    : time_to_first_token_seconds({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                   0.75, 1.0, 2.5, 5.0, 7.5, 10.0}),
      inter_token_latency_seconds({0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04,
                                   0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}),
      e2e_request_latency_seconds(
          {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0}) {}

namespace {

void line(std::string& out, const char* name, const char* type, const char* help, double v) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "# HELP nucleus:%s %s\n# TYPE nucleus:%s %s\nnucleus:%s %.17g\n",
                name, help, name, type, name, v);
  out += buf;
}

void histogram(std::string& out, const char* name, const char* help, const Histogram& h) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "# HELP nucleus:%s %s\n# TYPE nucleus:%s histogram\n", name, help,
                name);
  out += buf;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    std::snprintf(buf, sizeof buf, "nucleus:%s_bucket{le=\"%g\"} %lld\n", name, h.bounds[i],
                  static_cast<long long>(h.counts[i]));
    out += buf;
  }
  std::snprintf(buf, sizeof buf,
                "nucleus:%s_bucket{le=\"+Inf\"} %lld\nnucleus:%s_sum %.17g\nnucleus:%s_count %lld\n",
                name, static_cast<long long>(h.counts.back()), name, h.sum, name,
                static_cast<long long>(h.count));
  out += buf;
}

}  // namespace

std::string to_prometheus(const MetricsSnapshot& m) {
  std::string out;
  line(out, "num_requests_running", "gauge", "Requests being stepped.",
       static_cast<double>(m.num_requests_running));
  line(out, "num_requests_waiting", "gauge", "Requests queued or pre-empted.",
       static_cast<double>(m.num_requests_waiting));
  line(out, "kv_cache_usage_perc", "gauge", "Fraction of KV blocks held by requests (0..1).",
       m.kv_cache_usage_perc);
  line(out, "kv_blocks_in_use", "gauge", "KV blocks held by live requests.",
       static_cast<double>(m.kv_blocks_in_use));
  line(out, "kv_blocks_cached", "gauge", "KV blocks held only by the prefix cache.",
       static_cast<double>(m.kv_blocks_cached));
  line(out, "kv_blocks_total", "gauge", "KV blocks in the pool.",
       static_cast<double>(m.kv_blocks_total));
  line(out, "prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
       static_cast<double>(m.prefix_cache_queries_total));
  line(out, "prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.",
       static_cast<double>(m.prefix_cache_hits_total));
  line(out, "num_preemptions_total", "counter", "Requests pre-empted for lack of KV blocks.",
       static_cast<double>(m.num_preemptions_total));
  line(out, "prompt_tokens_total", "counter", "Prompt tokens of admitted requests.",
       static_cast<double>(m.prompt_tokens_total));
  line(out, "prefill_tokens_total", "counter",
       "Rows computed for prompts and recomputation (prefix-cache hits excluded).",
       static_cast<double>(m.prefill_tokens_total));
  line(out, "generation_tokens_total", "counter", "Generated tokens.",
       static_cast<double>(m.generation_tokens_total));
  line(out, "request_success_total", "counter", "Requests finished.",
       static_cast<double>(m.requests_finished_total));
  line(out, "requests_cancelled_total", "counter", "Requests cancelled (client gone, drain).",
       static_cast<double>(m.requests_cancelled_total));
  line(out, "engine_steps_total", "counter", "Forward passes run by the scheduler.",
       static_cast<double>(m.steps_total));
  histogram(out, "time_to_first_token_seconds", "Time to first token.",
            m.time_to_first_token_seconds);
  histogram(out, "inter_token_latency_seconds", "Time between tokens of a request.",
            m.inter_token_latency_seconds);
  histogram(out, "e2e_request_latency_seconds", "Request latency, arrival to end.",
            m.e2e_request_latency_seconds);
  return out;
}

}  // namespace nucleus::serve
