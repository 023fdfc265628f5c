#pragma once
// The one generation loop. Every request — greedy, sampling, n > 1, stop
// strings, streaming, beam search — is a Job (generate/job.h), a state
// machine the scheduler steps. Each step:
//   1. drop cancelled jobs, admit waiting ones (FIFO, up to max_running);
//   2. ask every running job for its decode rows, then for prefill chunks
//      under the step's token budget (chunked prefill: a long prompt never
//      stalls the others' decode for more than one budget's worth of rows);
//   3. make sure the KV pool has the blocks those rows need: evict cached
//      prefix blocks (LRU), then pre-empt the newest running job (its blocks
//      are freed; it recomputes later, with the same tokens);
//   4. run one Engine::forward over all rows and hand each job its logits.
// Batch-invariant kernels and the counter-based sampler make a job's tokens
// independent of everything else in the batch, of chunking, of prefix-cache
// hits and of pre-emption.
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "generate/job.h"
#include "kv/prefix_cache.h"
#include "runtime/engine.h"
#include "serve/metrics.h"
#include "serve/request.h"

namespace nucleus::serve {

struct SchedulerOptions {
  int64_t max_running = 16;   // jobs stepped together (--parallel)
  int64_t step_tokens = 256;  // rows per forward: all decode rows + prefill chunks
  bool prefix_cache = true;
  // Chunked prefill that protects decode latency: while sequences are
  // decoding, a step's prefill rows are held to what fits in this fraction
  // of a decode-only step's measured time (so a long prompt arriving
  // mid-stream stretches the others' inter-token latency by about 1 + this),
  // never fewer than min_prefill_chunk rows. 0 turns the limit off.
  double prefill_time_share = 0.6;
  int64_t min_prefill_chunk = 1;
};

class Scheduler {
 public:
  Scheduler(Engine& engine, const Tokenizer* tokenizer, const SchedulerOptions& options);
  ~Scheduler();

  // Validates (throws nucleus::Error on bad input) and queues the request.
  void add(RequestOptions request, RequestCallbacks callbacks);
  // Adds an already built job (the CLI's blocking generate()).
  void add_job(std::unique_ptr<Job> job, RequestCallbacks callbacks);

  // One step; false when there was nothing to do.
  bool step();
  bool idle() const { return running_.empty() && waiting_.empty(); }
  int64_t running() const { return static_cast<int64_t>(running_.size()); }
  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
  // Ends every job now with stop reason "cancelled" (drain deadline).
  void cancel_all();
  // Ends every job with an error event (a step failed).
  void fail_all(const std::string& message);

  // Gauges and counters into m (histograms are observed as events happen).
  void fill_metrics(MetricsSnapshot& m) const;
  // Latency observations since the last call (TTFT, ITL, e2e), in seconds.
  struct Latencies {
    std::vector<double> ttft, itl, e2e;
  };
  void take_latencies(Latencies& out);

  Engine& engine() { return engine_; }

 private:
  struct Entry;
  bool ensure_blocks();
  void finish(Entry& e);
  void preempt(Entry& e);

  Engine& engine_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  PrefixCache prefix_;
  JobContext ctx_;
  std::vector<std::unique_ptr<Entry>> running_;  // admission order
  std::vector<std::unique_ptr<Entry>> waiting_;  // FIFO
  Batch batch_;
  std::vector<int32_t> owner_;  // per batch row: its job's index in running_
  std::vector<char> planned_;
  std::vector<float> logits_;
  Latencies lat_;
  int64_t preemptions_ = 0, generated_ = 0, prompt_tokens_ = 0, prefill_rows_ = 0;
  int64_t finished_ = 0, cancelled_ = 0, steps_ = 0;
  int64_t prefix_queries_ = 0, prefix_hits_ = 0;
  // Measured step costs (exponential averages, seconds): a decode-only step,
  // and one prefill row on top of the decode rows.
  double decode_step_s_ = 0.0, prefill_row_s_ = 0.0;
  int64_t prefill_budget(int64_t budget_left, bool decoding) const;
};

}  // namespace nucleus::serve
