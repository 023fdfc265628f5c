#include "sampling/processor.h"

#include <algorithm>
#include <numeric>

#include "sampling/math.h"
#include "util/error.h"

namespace nucleus::sampling {

SequenceView make_view(std::span<const int32_t> ids, int64_t prompt_len) {
  // Called every decode step: the message is built only on failure.
  if (prompt_len < 0 || prompt_len > static_cast<int64_t>(ids.size()))
    throw Error("sampling: prompt_len=" + std::to_string(prompt_len) + " outside [0, " +
                std::to_string(ids.size()) + "] (sequence length)");
  SequenceView v;
  v.ids = ids;
  v.prompt_len = prompt_len;
  v.step = static_cast<int64_t>(ids.size()) - prompt_len;
  return v;
}

TraceRecord summarize_row(std::string name, std::span<const float> logits, int top_n) {
  TraceRecord r;
  r.name = std::move(name);
  r.survivors = count_survivors(logits);
  const std::vector<float> probs = softmax(logits);
  std::vector<int32_t> idx(logits.size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t n =
      std::min<size_t>(static_cast<size_t>(std::max(top_n, 0)), static_cast<size_t>(r.survivors));
  // Best first; equal logits by lower id so the trace is deterministic.
  std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int32_t a, int32_t b) {
    if (logits[a] != logits[b]) return logits[a] > logits[b];
    return a < b;
  });
  for (size_t i = 0; i < n; ++i) r.top.push_back({idx[i], logits[idx[i]], probs[idx[i]]});
  return r;
}

void ProcessorChain::add(std::unique_ptr<LogitsProcessor> p) {
  check(p != nullptr, "sampling: ProcessorChain::add: null processor");
  processors_.push_back(std::move(p));
}

void ProcessorChain::apply(std::span<float> logits, const SequenceView& seq,
                           ProcessorScratch& scratch, SamplingTrace* trace) const {
  StepTrace* st = nullptr;
  if (trace != nullptr) {
    trace->steps.push_back(StepTrace{seq.step, {}});
    st = &trace->steps.back();
    st->records.push_back(summarize_row("input", logits, trace->top_n));
  }
  for (const auto& p : processors_) {
    p->apply(logits, seq, scratch);
    if (st != nullptr) st->records.push_back(summarize_row(p->name(), logits, trace->top_n));
  }
}

std::string ProcessorChain::describe() const {
  if (processors_.empty()) return "(empty)";
  std::string s;
  for (size_t i = 0; i < processors_.size(); ++i) {
    if (i > 0) s += " -> ";
    s += processors_[i]->describe();
  }
  return s;
}

std::vector<std::string> ProcessorChain::names() const {
  std::vector<std::string> out;
  for (const auto& p : processors_) out.push_back(p->name());
  return out;
}

}  // namespace nucleus::sampling
