#pragma once
// The thread-safe face of the scheduler for front ends (the HTTP server):
// requests are submitted from any thread, one scheduler thread steps every
// live request through Engine::forward, and each request's events (tokens,
// the final result, an error) come back through its own RequestHandle.
//
// The front end only translates (JSON <-> RequestOptions / Event); every
// generation decision lives in the scheduler below it.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "generate/generator.h"
#include "serve/metrics.h"
#include "serve/request.h"
#include "serve/scheduler.h"

namespace nucleus::serve {

// One event of a request, in order: Token events (not for beam search), then
// exactly one Done or Error.
struct Event {
  enum class Kind { Token, Done, Error };
  Kind kind = Kind::Token;
  TokenEvent token;       // Kind::Token
  GenerateResult result;  // Kind::Done: every sequence (beams: the returned hypotheses)
  std::string error;      // Kind::Error: one-line message
};

// The front end's end of one request. Thread-safe.
class RequestHandle {
 public:
  // Waits up to `timeout` for the next event; false when none came.
  bool next(Event& out, std::chrono::milliseconds timeout);
  // The client went away: the scheduler drops the request and frees its KV
  // blocks at the next step. Idempotent.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

  // Scheduler side.
  void push(Event e);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::atomic<bool> cancelled_{false};
};

struct ServiceOptions {
  SchedulerOptions scheduler;
  int64_t max_queue = 64;  // waiting requests beyond this are refused (HTTP 429)
};

class Service {
 public:
  // The engine (and tokenizer, may be null) must outlive the service. Starts
  // the scheduler thread.
  Service(Engine& engine, const Tokenizer* tokenizer, const ServiceOptions& options);
  ~Service();  // stop(0)
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Validates the request (throws nucleus::Error with a one-line message on
  // bad input: ids out of range, prompt beyond the context, bad settings) and
  // queues it. Returns null when the waiting queue is full (HTTP 429) or the
  // service is draining (HTTP 503).
  std::shared_ptr<RequestHandle> submit(RequestOptions request);

  // Drain: refuse new requests, let in-flight ones finish until `deadline`,
  // then cancel the rest; returns when the scheduler thread has stopped.
  void stop(std::chrono::milliseconds deadline);
  bool draining() const { return draining_.load(); }

  MetricsSnapshot metrics() const;
  const Engine& engine() const { return engine_; }
  const Tokenizer* tokenizer() const { return tokenizer_; }

 private:
  void loop();

  Engine& engine_;
  const Tokenizer* tokenizer_;
  ServiceOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Pending {
    RequestOptions request;
    std::shared_ptr<RequestHandle> handle;
  };
  std::deque<Pending> incoming_;  // submitted, not yet handed to the scheduler
  Scheduler scheduler_;           // touched only by the scheduler thread
  Metrics metrics_;               // thread-safe
  int64_t scheduler_waiting_ = 0;  // under mu_: the scheduler's queue, for admission control
  std::atomic<bool> draining_{false};
  std::atomic<bool> stop_now_{false};
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::thread thread_;
};

}  // namespace nucleus::serve
