#pragma once
// One request's generation as a state machine that a scheduler steps
// (serve/scheduler.h). A job owns its KV sequences; each step it
//   plan():    appends the rows it wants to a shared Batch (decode rows, or a
//              chunk of the prompt under the step's token budget),
//   consume(): receives exactly its logits rows and advances (chooses tokens,
//              forks beams, checks stops, streams text).
// Everything between plan and consume — batching with other jobs, chunking,
// prefix-cache reuse, pre-emption — leaves the job's tokens unchanged,
// because the engine computes every row bit-identically whatever else runs.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "generate/generator.h"
#include "kv/prefix_cache.h"
#include "runtime/batch.h"
#include "runtime/engine.h"

namespace nucleus {

// What the scheduler lends a job: the engine (its KV cache) and the prefix
// cache (null when off).
struct JobContext {
  Engine* engine = nullptr;
  PrefixCache* prefix = nullptr;
};

// Adds one step's counters to a phase's (a job's prefill or decode stats).
inline void accumulate(OpCounters& a, const OpCounters& b) {
  a.matmul_flops += b.matmul_flops;
  a.attention_flops += b.attention_flops;
  a.weight_bytes += b.weight_bytes;
  a.kv_read_bytes += b.kv_read_bytes;
  a.kv_write_bytes += b.kv_write_bytes;
}

// One generated token, as streamed (greedy/sampling jobs only).
struct JobToken {
  int64_t index = 0;  // sequence index in the request
  int32_t token = 0;
  float logprob = 0.0f;  // raw log-softmax of the logits row
  std::span<const float> logprobs;  // the whole raw log-softmax row (valid during the call)
  std::string_view text;            // text that became final
  bool last = false;
  std::string_view stop_reason;
};
using JobTokenSink = std::function<void(const JobToken&)>;

class Job {
 public:
  virtual ~Job() = default;

  // Appends rows to batch. decode_pass: only rows of sequences that are
  // decoding (one row each, or k+1 for speculation); otherwise prefill rows,
  // at most `budget` in all (budget is decreased by the rows added).
  virtual void plan(Batch& batch, int64_t& budget, bool decode_pass) = 0;
  // KV blocks the rows planned this step will take from the pool.
  virtual int64_t blocks_needed() const = 0;
  // Forget this step's plan (the scheduler re-plans after pre-empting).
  virtual void unplan() = 0;
  // The logits rows (vocab floats each) of this job's rows that asked for
  // logits, in plan order. `counters` are the whole step's (attributed to
  // prefill or decode in the job's PhaseStats).
  virtual void consume(std::span<const float* const> rows, const OpCounters& counters) = 0;
  virtual bool finished() const = 0;
  // Frees every KV block; the job recomputes what it had when stepped again.
  virtual void preempt() = 0;
  // Ends the job now (client gone, drain deadline): frees KV, marks every
  // running sequence with `reason`.
  virtual void abort(const std::string& reason) = 0;
  // Frees KV and returns the result (call once, when finished()).
  virtual GenerateResult take_result() = 0;

  // For admission and metrics.
  virtual int64_t prompt_tokens() const = 0;
  virtual bool prefilling() const = 0;
  // Prompt positions taken from the prefix cache instead of computed (so far).
  virtual int64_t cached_prompt_tokens() const = 0;
  // Blocks this job needs at the very least to make progress (admission).
  virtual int64_t min_blocks() const = 0;
};

// Builds the job for a request already passed through prepare_request():
// beam search when num_beams > 1, else greedy/sampling with n sequences.
// on_token may be empty. top_logprobs is only a hint for the sink's use.
std::unique_ptr<Job> make_job(const JobContext& ctx, const Tokenizer* tokenizer,
                              const GenerateRequest& request, JobTokenSink on_token);
// The two kinds (generate/sample_job.cpp, generate/beam_job.cpp).
std::unique_ptr<Job> make_sample_job(const JobContext& ctx, const Tokenizer* tokenizer,
                                     const GenerateRequest& request, JobTokenSink on_token);
std::unique_ptr<Job> make_beam_job(const JobContext& ctx, const Tokenizer* tokenizer,
                                   const GenerateRequest& request);

}  // namespace nucleus
