#pragma once
// The logits-processor chain: an ordered list of small named units, each
// rewriting one logits row in place given the sequence it belongs to. Removed
// candidates are set to -inf, so a softmax over the row renormalises over the
// survivors exactly as Hugging Face's filters do.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace nucleus::sampling {

// What a processor may know about the sequence: all ids so far (prompt then
// generated), how many of them are prompt, and the generation step (0 for the
// first new token; equals ids.size() - prompt_len).
struct SequenceView {
  std::span<const int32_t> ids;
  int64_t prompt_len = 0;
  int64_t step = 0;

  int64_t length() const { return static_cast<int64_t>(ids.size()); }
  int64_t generated() const { return length() - prompt_len; }
};

// Builds a consistent view: step is derived from ids and prompt_len.
SequenceView make_view(std::span<const int32_t> ids, int64_t prompt_len);

// One candidate as the trace shows it.
struct TraceCandidate {
  int32_t id = 0;
  float logit = 0.0f;
  float prob = 0.0f;  // softmax of the row at that point of the chain
};

// State of the row after one processor ran ("input" for the row as it came in).
struct TraceRecord {
  std::string name;
  int64_t survivors = 0;            // candidates whose logit is not -inf
  std::vector<TraceCandidate> top;  // best first, ties by lower id
};

struct StepTrace {
  int64_t step = 0;
  std::vector<TraceRecord> records;
};

// Optional per-step recording; the generate loop owns one per sequence and
// passes it to ProcessorChain::apply when the user asks for a trace.
struct SamplingTrace {
  int top_n = 5;
  std::vector<StepTrace> steps;
};

// Summarises a row: survivors and the top_n candidates with probabilities.
// Allocates (tracing is opt-in and off the allocation-free path).
TraceRecord summarize_row(std::string name, std::span<const float> logits, int top_n);

// Working memory for the processors, owned by the caller and reused row after
// row: once every buffer has grown to the vocabulary size, applying a chain
// allocates nothing. Processors stay stateless (the scratch carries nothing
// from one call to the next), so one chain still serves many sequences; each
// thread or decode loop keeps its own scratch. Contents are unspecified
// between calls.
struct ProcessorScratch {
  // A buffer of n elements, reusing capacity; its contents are unspecified.
  template <class T>
  static std::span<T> take(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return std::span<T>(v.data(), n);
  }

  std::vector<float> f0, f1, f2, f3;
  std::vector<int32_t> i0;
  std::vector<char> flags;
  // (value, id) pairs for the processors that sort candidates.
  struct Cand {
    float v;
    int32_t id;
  };
  std::vector<Cand> cands;
};

class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  // Short stable identifier, e.g. "top_p".
  virtual std::string name() const = 0;
  // Name with parameters, e.g. "top_p(p=0.9, min_keep=1)".
  virtual std::string describe() const = 0;
  // Rewrites the row in place; allocates nothing once scratch is warm.
  virtual void apply(std::span<float> logits, const SequenceView& seq,
                     ProcessorScratch& scratch) const = 0;
  // One-off use (tests, tools): a fresh scratch per call, so it allocates.
  void apply(std::span<float> logits, const SequenceView& seq) const {
    ProcessorScratch scratch;
    apply(logits, seq, scratch);
  }
};

// Processors keep no per-sequence state (everything they need is in the
// SequenceView), so one chain may serve every sequence and thread at once.
class ProcessorChain {
 public:
  ProcessorChain() = default;
  ProcessorChain(ProcessorChain&&) = default;
  ProcessorChain& operator=(ProcessorChain&&) = default;

  void add(std::unique_ptr<LogitsProcessor> p);
  // Runs every processor in order; when trace is given, appends one StepTrace
  // holding the input row and the row after each processor. Without a trace
  // it allocates nothing once scratch is warm; tracing allocates.
  void apply(std::span<float> logits, const SequenceView& seq, ProcessorScratch& scratch,
             SamplingTrace* trace = nullptr) const;
  // One-off use (tests, tools): a fresh scratch per call, so it allocates.
  void apply(std::span<float> logits, const SequenceView& seq,
             SamplingTrace* trace = nullptr) const {
    ProcessorScratch scratch;
    apply(logits, seq, scratch, trace);
  }
  // The order that runs, e.g. "repetition_penalty(1.3) -> temperature(0.7)";
  // "(empty)" when no processor is active.
  std::string describe() const;
  std::vector<std::string> names() const;
  size_t size() const { return processors_.size(); }
  bool empty() const { return processors_.empty(); }
  const LogitsProcessor& at(size_t i) const { return *processors_.at(i); }

 private:
  std::vector<std::unique_ptr<LogitsProcessor>> processors_;
};

}  // namespace nucleus::sampling
