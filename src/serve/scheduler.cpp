#include "serve/scheduler.h"

#include <algorithm>

#include "util/error.h"

namespace nucleus::serve {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

struct Scheduler::Entry {
  std::unique_ptr<Job> job;
  RequestCallbacks cb;
  int64_t top_logprobs = 0;
  bool admitted_once = false;
  bool first_token_seen = false;
  Clock::time_point arrival, last_token;
  std::vector<const float*> rows;  // this step's logits rows, reused
  std::vector<int32_t> top_idx;    // scratch for top_logprobs
};

Scheduler::Scheduler(Engine& engine, const Tokenizer* tokenizer, const SchedulerOptions& options)
    : engine_(engine), tokenizer_(tokenizer), options_(options), prefix_(engine.kv()) {
  check(options.max_running > 0, "scheduler: max_running must be positive");
  check(options.step_tokens > 0, "scheduler: step_tokens must be positive");
  ctx_.engine = &engine_;
  ctx_.prefix = options.prefix_cache ? &prefix_ : nullptr;
  // A step's rows never exceed the budget, and rarely the context: reserved
  // once so that steps do not allocate as sequences grow.
  const int64_t rows = std::min<int64_t>(options.step_tokens, engine.context_length() + 64);
  batch_.rows.reserve(static_cast<size_t>(rows));
  owner_.reserve(static_cast<size_t>(rows));
}

Scheduler::~Scheduler() {
  // Jobs free their KV before the prefix cache drops its references.
  running_.clear();
  waiting_.clear();
}

void Scheduler::add(RequestOptions request, RequestCallbacks callbacks) {
  prepare_request(engine_, tokenizer_, request.gen);
  check(request.top_logprobs >= 0 && request.top_logprobs <= 20,
        "top_logprobs must be in [0, 20], got " + std::to_string(request.top_logprobs));
  auto e = std::make_unique<Entry>();
  Entry* raw = e.get();
  e->cb = std::move(callbacks);
  e->top_logprobs = request.top_logprobs;
  e->arrival = Clock::now();
  JobTokenSink sink = [this, raw](const JobToken& t) {
    const Clock::time_point now = Clock::now();
    if (!raw->first_token_seen) {
      raw->first_token_seen = true;
      lat_.ttft.push_back(seconds_between(raw->arrival, now));
    } else {
      lat_.itl.push_back(seconds_between(raw->last_token, now));
    }
    raw->last_token = now;
    ++generated_;
    if (!raw->cb.on_token) return;
    TokenEvent ev;
    ev.index = t.index;
    ev.token = t.token;
    ev.logprob = t.logprob;
    ev.text = std::string(t.text);
    ev.last = t.last;
    ev.stop_reason = std::string(t.stop_reason);
    if (raw->top_logprobs > 0) {
      const auto& lp = t.logprobs;
      auto& idx = raw->top_idx;
      idx.resize(lp.size());
      for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i);
      const size_t k = std::min<size_t>(static_cast<size_t>(raw->top_logprobs), idx.size());
      std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
                        [&](int32_t a, int32_t b) {
                          return lp[static_cast<size_t>(a)] > lp[static_cast<size_t>(b)] ||
                                 (lp[static_cast<size_t>(a)] == lp[static_cast<size_t>(b)] && a < b);
                        });
      for (size_t i = 0; i < k; ++i) ev.top.push_back({idx[i], lp[static_cast<size_t>(idx[i])]});
    }
    raw->cb.on_token(ev);
  };
  e->job = make_job(ctx_, tokenizer_, request.gen, std::move(sink));
  const int64_t total = engine_.kv().shape().n_blocks;
  check(e->job->min_blocks() <= total,
        "the request needs at least " + std::to_string(e->job->min_blocks()) +
            " KV blocks and the cache has " + std::to_string(total));
  waiting_.push_back(std::move(e));
}

void Scheduler::add_job(std::unique_ptr<Job> job, RequestCallbacks callbacks) {
  auto e = std::make_unique<Entry>();
  e->job = std::move(job);
  e->cb = std::move(callbacks);
  e->arrival = Clock::now();
  waiting_.push_back(std::move(e));
}

void Scheduler::finish(Entry& e) {
  ++finished_;
  prefix_hits_ += e.job->cached_prompt_tokens();
  lat_.e2e.push_back(seconds_between(e.arrival, Clock::now()));
  GenerateResult r = e.job->take_result();
  if (e.cb.on_done) e.cb.on_done(std::move(r));
}

void Scheduler::preempt(Entry& e) {
  e.job->preempt();
  ++preemptions_;
}

void Scheduler::cancel_all() {
  for (auto* list : {&running_, &waiting_}) {
    for (auto& e : *list) {
      e->job->abort("cancelled");
      ++cancelled_;
      finish(*e);
    }
    list->clear();
  }
}

void Scheduler::fail_all(const std::string& message) {
  for (auto* list : {&running_, &waiting_}) {
    for (auto& e : *list) {
      e->job->abort("error");
      e->job->take_result();
      if (e->cb.on_error) e->cb.on_error(message);
    }
    list->clear();
  }
}

bool Scheduler::step() {
  KvCache& kv = engine_.kv();
  // 1. Requests whose client went away end now; their blocks return at once.
  for (auto* list : {&running_, &waiting_}) {
    for (auto it = list->begin(); it != list->end();) {
      Entry& e = **it;
      if (e.cb.cancelled && e.cb.cancelled()) {
        e.job->abort("cancelled");
        ++cancelled_;
        finish(e);
        it = list->erase(it);
      } else {
        ++it;
      }
    }
  }
  // 2. Admission, FIFO, while the pool can hold each newcomer's first step.
  while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_running) {
    Entry& e = *waiting_.front();
    const int64_t available = kv.free_blocks() + prefix_.evictable_blocks();
    if (!running_.empty() && available < e.job->min_blocks()) break;
    if (!e.admitted_once) {
      e.admitted_once = true;
      prompt_tokens_ += e.job->prompt_tokens();
      prefix_queries_ += e.job->prompt_tokens();
    }
    running_.push_back(std::move(waiting_.front()));
    waiting_.erase(waiting_.begin());
  }
  if (running_.empty()) return false;

  // 3. Plan: decode rows first, then prefill chunks under the budget; make
  // room in the pool, pre-empting the newest job when eviction is not enough.
  int64_t decode_rows = 0, step_prefill_rows = 0;
  for (;;) {
    batch_.clear();
    owner_.clear();
    int64_t budget = options_.step_tokens;
    int64_t prefill_rows = 0;
    for (bool decode_pass : {true, false}) {
      if (!decode_pass) {
        decode_rows = static_cast<int64_t>(batch_.rows.size());
        budget = prefill_budget(budget, decode_rows > 0);
      }
      for (size_t j = 0; j < running_.size(); ++j) {
        const size_t before = batch_.rows.size();
        running_[j]->job->plan(batch_, budget, decode_pass);
        const size_t added = batch_.rows.size() - before;
        if (decode_pass) budget = std::max<int64_t>(0, budget - static_cast<int64_t>(added));
        else prefill_rows += static_cast<int64_t>(added);
        for (size_t r = 0; r < added; ++r) owner_.push_back(static_cast<int32_t>(j));
      }
    }
    step_prefill_rows = prefill_rows;
    int64_t need = 0;
    for (const auto& e : running_) need += e->job->blocks_needed();
    if (need > kv.free_blocks()) prefix_.evict(need - kv.free_blocks());
    if (need <= kv.free_blocks()) {
      prefill_rows_ += prefill_rows;
      break;
    }
    for (auto& e : running_) e->job->unplan();
    if (running_.size() == 1) {
      // Alone and still short: the pool cannot hold this request.
      Entry& e = *running_.front();
      e.job->abort("error");
      GenerateResult r = e.job->take_result();
      if (e.cb.on_error)
        e.cb.on_error("the KV cache is too small for this request (" + std::to_string(need) +
                      " blocks needed, " + std::to_string(kv.free_blocks()) + " free)");
      running_.clear();
      return true;
    }
    preempt(*running_.back());
    waiting_.insert(waiting_.begin(), std::move(running_.back()));
    running_.pop_back();
  }
  if (batch_.rows.empty()) return false;

  // 4. One forward over every row; each job gets exactly its logits rows.
  ++steps_;
  engine_.reset_counters();
  const auto t0 = Clock::now();
  engine_.forward(batch_, logits_);
  const double took = seconds_between(t0, Clock::now());
  const OpCounters counters = engine_.counters();
  // Learn what a decode step and a prefill row cost on this machine and model.
  constexpr double kAlpha = 0.25;
  if (step_prefill_rows == 0 && decode_rows > 0) {
    decode_step_s_ = decode_step_s_ == 0.0 ? took : decode_step_s_ + kAlpha * (took - decode_step_s_);
  } else if (step_prefill_rows > 0) {
    const double base = decode_rows > 0 ? decode_step_s_ : 0.0;
    const double per_row = std::max(0.0, took - base) / static_cast<double>(step_prefill_rows);
    prefill_row_s_ = prefill_row_s_ == 0.0 ? per_row : prefill_row_s_ + kAlpha * (per_row - prefill_row_s_);
  }
  for (auto& e : running_) e->rows.clear();
  const int64_t vocab = engine_.vocab_size();
  int64_t li = 0;
  for (size_t r = 0; r < batch_.rows.size(); ++r) {
    if (!batch_.rows[r].logits) continue;
    running_[static_cast<size_t>(owner_[r])]->rows.push_back(logits_.data() + li * vocab);
    ++li;
  }
  std::vector<char>& planned = planned_;
  planned.assign(running_.size(), 0);
  for (int32_t o : owner_) planned[static_cast<size_t>(o)] = 1;
  for (size_t j = 0; j < running_.size(); ++j)
    if (planned[j]) running_[j]->job->consume(running_[j]->rows, counters);

  // 5. Finished jobs leave; their blocks are already back in the pool.
  for (auto it = running_.begin(); it != running_.end();) {
    if ((*it)->job->finished()) {
      finish(**it);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  return true;
}

int64_t Scheduler::prefill_budget(int64_t budget_left, bool decoding) const {
  if (!decoding || options_.prefill_time_share <= 0.0 || decode_step_s_ == 0.0 ||
      prefill_row_s_ == 0.0)
    return budget_left;
  const double rows = options_.prefill_time_share * decode_step_s_ / prefill_row_s_;
  const int64_t cap = std::max<int64_t>(options_.min_prefill_chunk,
                                        static_cast<int64_t>(std::min(rows, 1e9)));
  return std::min(budget_left, cap);
}

void Scheduler::fill_metrics(MetricsSnapshot& m) const {
  const KvMemory mem = engine_.kv().memory();
  m.num_requests_running = static_cast<int64_t>(running_.size());
  m.num_requests_waiting = static_cast<int64_t>(waiting_.size());
  m.kv_blocks_total = mem.blocks_total;
  m.kv_blocks_cached = prefix_.evictable_blocks();
  m.kv_blocks_in_use = mem.blocks_used - m.kv_blocks_cached;
  m.kv_cache_usage_perc =
      mem.blocks_total > 0 ? static_cast<double>(m.kv_blocks_in_use) / mem.blocks_total : 0.0;
  m.prefix_cache_queries_total = prefix_queries_;
  m.prefix_cache_hits_total = prefix_hits_;
  m.num_preemptions_total = preemptions_;
  m.prompt_tokens_total = prompt_tokens_;
  m.prefill_tokens_total = prefill_rows_;
  m.generation_tokens_total = generated_;
  m.requests_finished_total = finished_;
  m.requests_cancelled_total = cancelled_;
  m.steps_total = steps_;
}

void Scheduler::take_latencies(Latencies& out) {
  out.ttft.swap(lat_.ttft);
  out.itl.swap(lat_.itl);
  out.e2e.swap(lat_.e2e);
  lat_.ttft.clear();
  lat_.itl.clear();
  lat_.e2e.clear();
}

}  // namespace nucleus::serve
