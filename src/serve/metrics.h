#pragma once
// Serving counters and latency histograms (vLLM's metric names, Prometheus
// text exposition). Updated by the scheduler thread, read by /metrics.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace nucleus::serve {

// Cumulative histogram with fixed bucket bounds (seconds).
struct Histogram {
  std::vector<double> bounds;
  std::vector<int64_t> counts;  // counts[i]: observations <= bounds[i]; one more for +Inf
  double sum = 0.0;
  int64_t count = 0;
  explicit Histogram(std::vector<double> b = {});
  void observe(double v);
};

struct MetricsSnapshot {
  int64_t num_requests_running = 0;
  int64_t num_requests_waiting = 0;
  double kv_cache_usage_perc = 0.0;      // blocks held by requests / all blocks (0..1)
  int64_t kv_blocks_in_use = 0;          // held by live requests (cached-only blocks excluded)
  int64_t kv_blocks_cached = 0;          // held only by the prefix cache
  int64_t kv_blocks_total = 0;
  int64_t prefix_cache_queries_total = 0;  // prompt tokens looked up
  int64_t prefix_cache_hits_total = 0;     // prompt tokens found cached
  int64_t num_preemptions_total = 0;
  int64_t prompt_tokens_total = 0;       // prompt tokens of finished/running requests
  int64_t prefill_tokens_total = 0;      // rows actually computed for prompts (hits excluded)
  int64_t generation_tokens_total = 0;
  int64_t requests_finished_total = 0;
  int64_t requests_cancelled_total = 0;
  int64_t steps_total = 0;
  Histogram time_to_first_token_seconds;
  Histogram inter_token_latency_seconds;
  Histogram e2e_request_latency_seconds;
  MetricsSnapshot();
};

// Prometheus text format, names prefixed "nucleus:".
std::string to_prometheus(const MetricsSnapshot& m);

class Metrics {
 public:
  template <class F>
  void update(F&& f) {
    std::lock_guard<std::mutex> lock(mu_);
    f(m_);
  }
  MetricsSnapshot snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return m_;
  }

 private:
  mutable std::mutex mu_;
  MetricsSnapshot m_;
};

}  // namespace nucleus::serve
