#include "serve/service.h"

#include "util/error.h"

namespace nucleus::serve {

bool RequestHandle::next(Event& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  out = std::move(events_.front());
  events_.pop_front();
  return true;
}

void RequestHandle::push(Event e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

Service::Service(Engine& engine, const Tokenizer* tokenizer, const ServiceOptions& options)
    : engine_(engine),
      tokenizer_(tokenizer),
      options_(options),
      scheduler_(engine, tokenizer, options.scheduler) {
  check(options.max_queue >= 0, "max_queue must be >= 0");
  metrics_.update([&](MetricsSnapshot& m) { scheduler_.fill_metrics(m); });
  thread_ = std::thread([this] { loop(); });
}

Service::~Service() { stop(std::chrono::milliseconds(0)); }

std::shared_ptr<RequestHandle> Service::submit(RequestOptions request) {
  if (draining_.load()) return nullptr;
  // Validation here, on the caller's thread, so bad input is answered at once.
  prepare_request(engine_, tokenizer_, request.gen);
  check(request.top_logprobs >= 0 && request.top_logprobs <= 20,
        "top_logprobs must be in [0, 20], got " + std::to_string(request.top_logprobs));
  auto handle = std::make_shared<RequestHandle>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_.load()) return nullptr;
    const int64_t waiting = static_cast<int64_t>(incoming_.size()) + scheduler_waiting_;
    if (waiting >= options_.max_queue) return nullptr;
    incoming_.push_back({std::move(request), handle});
  }
  cv_.notify_all();
  return handle;
}

void Service::stop(std::chrono::milliseconds deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!draining_.load()) {
      draining_.store(true);
      drain_deadline_ = std::chrono::steady_clock::now() + deadline;
    }
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

MetricsSnapshot Service::metrics() const { return metrics_.snapshot(); }

void Service::loop() {
  Scheduler::Latencies lat;
  for (;;) {
    std::deque<Pending> fresh;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (incoming_.empty() && scheduler_.idle()) {
        if (draining_.load()) break;
        cv_.wait_for(lock, std::chrono::milliseconds(50));
      }
      fresh.swap(incoming_);
    }
    for (Pending& p : fresh) {
      std::shared_ptr<RequestHandle> h = p.handle;
      RequestCallbacks cb;
      cb.on_token = [h](const TokenEvent& t) {
        Event e;
        e.kind = Event::Kind::Token;
        e.token = t;
        h->push(std::move(e));
      };
      cb.on_done = [this, h](GenerateResult&& r) {
        // Counters first, so that /metrics read after the response agrees with it.
        metrics_.update([&](MetricsSnapshot& m) { scheduler_.fill_metrics(m); });
        Event e;
        e.kind = Event::Kind::Done;
        e.result = std::move(r);
        h->push(std::move(e));
      };
      cb.on_error = [h](const std::string& msg) {
        Event e;
        e.kind = Event::Kind::Error;
        e.error = msg;
        h->push(std::move(e));
      };
      cb.cancelled = [h] { return h->cancelled(); };
      try {
        scheduler_.add(std::move(p.request), std::move(cb));
      } catch (const std::exception& ex) {
        Event e;
        e.kind = Event::Kind::Error;
        e.error = ex.what();
        h->push(std::move(e));
      }
    }
    if (draining_.load() && std::chrono::steady_clock::now() >= drain_deadline_)
      scheduler_.cancel_all();
    try {
      scheduler_.step();
    } catch (const std::exception& ex) {
      // A failed step (should not happen after validation) must not take the
      // server down: every request in it ends with the error.
      scheduler_.fail_all(ex.what());
    }
    scheduler_.take_latencies(lat);
    metrics_.update([&](MetricsSnapshot& m) {
      scheduler_.fill_metrics(m);
      for (double v : lat.ttft) m.time_to_first_token_seconds.observe(v);
      for (double v : lat.itl) m.inter_token_latency_seconds.observe(v);
      for (double v : lat.e2e) m.e2e_request_latency_seconds.observe(v);
    });
    {
      std::lock_guard<std::mutex> lock(mu_);
      scheduler_waiting_ = scheduler_.waiting();
    }
  }
  metrics_.update([&](MetricsSnapshot& m) { scheduler_.fill_metrics(m); });
}

}  // namespace nucleus::serve
