#pragma once
// One request's generation: what is asked (GenerateRequest) and what comes
// back (GenerateResult). The work itself is a Job (generate/job.h) stepped by
// the scheduler (serve/scheduler.h): prefill the prompt once, then decode
// token by token for one or more sequences (n samples share the prompt's KV
// blocks), applying the logits-processor chain and the strategy, stopping on
// EOS, length, stop strings or time, and streaming text as it becomes final.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "sampling/generation_config.h"
#include "sampling/processor.h"
#include "tokenizer/tokenizer.h"

namespace nucleus {

// Exact speculative decoding (speculative/drafter.h): drafted tokens are
// verified in one forward and kept only where they equal what the target
// chooses, so the output is the same as without it.
struct SpeculativeOptions {
  enum class Mode { Off, Lookup, Draft };
  Mode mode = Mode::Off;
  int64_t draft_max = 8;           // most tokens drafted per step (adaptive below it)
  int64_t ngram = 3;               // lookup: longest n-gram matched (max_matching_ngram_size)
  Engine* draft_engine = nullptr;  // draft: the draft model's engine (same vocabulary)
};

struct SpeculativeStats {
  int64_t drafted = 0;   // tokens proposed
  int64_t accepted = 0;  // proposed tokens kept
  int64_t verify_forwards = 0;  // decode steps that verified at least one draft
  int64_t forwards = 0;         // decode steps of the request (one row or k+1 rows each)
};

struct GenerateRequest {
  std::vector<int32_t> prompt;  // ids, used as given (BOS included if wanted)
  sampling::GenerationConfig config;
  bool kv_cache = true;  // false: recompute the whole sequence every step
  bool trace = false;    // record the sampling trace per sequence
  // Beam search only, for measurement: instead of sharing blocks, every step
  // gives each new beam a full private copy of its parent's cache, as a
  // framework that reorders a dense per-beam cache does (HF's reorder_cache).
  // Same tokens and scores, more memory and copying.
  bool beam_full_copy = false;
  SpeculativeOptions speculative;  // greedy / sampling only
};

struct SequenceResult {
  std::vector<int32_t> tokens;  // generated ids (an EOS that ended it included, as HF does)
  std::string text;             // detokenized, stop string excluded
  double score = 0.0;           // sum of log-probs (sampling/greedy) or beam score
  std::string stop_reason;      // "eos", "length", "stop", "time"
  sampling::SamplingTrace trace;
};

struct PhaseStats {
  int64_t tokens = 0;  // prompt tokens (prefill) or generated tokens (decode)
  double seconds = 0.0;
  OpCounters counters;
};

struct GenerateResult {
  std::vector<SequenceResult> sequences;
  PhaseStats prefill, decode;
  std::string chain;  // the processor chain that ran, in order
  // The most KV-cache blocks in use (by every sequence of the engine's cache,
  // sampled after the prefill and after each decode step), and their size.
  int64_t kv_peak_blocks = 0;
  int64_t kv_bytes_per_block = 0;
  SpeculativeStats speculative;
};

// Called with text as it becomes final for sequence `index` (never a partial
// UTF-8 character, never part of a stop string).
using StreamCallback = std::function<void(int64_t index, const std::string& text)>;

// Validates a request and fills its defaults (max_new_tokens from the room
// left in the context, EOS ids); throws nucleus::Error on bad input. Every
// job is built from a prepared request.
void prepare_request(const Engine& engine, const Tokenizer* tokenizer, GenerateRequest& req);

// Runs the request to the end through the one generation loop
// (serve::Scheduler, with this request alone; defined in serve/run.cpp). Validates the configuration and the prompt before any
// model work; throws nucleus::Error on bad input. tokenizer may be null when
// no text is wanted (then stop strings are rejected).
GenerateResult generate(Engine& engine, const Tokenizer* tokenizer, const GenerateRequest& request,
                        const StreamCallback& stream = {});

}  // namespace nucleus
