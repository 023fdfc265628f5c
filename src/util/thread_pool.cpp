#include "util/thread_pool.h"

#include <immintrin.h>

#include <chrono>

namespace nucleus {
namespace {

constexpr uint64_t kGeneration = uint64_t{1} << 32;
constexpr uint64_t kCountMask = kGeneration - 1;

// Polls ready() for up to kSpinMicros; true if it became true. After the
// first few microseconds it yields between polls, so on a machine with more
// runnable threads than cores the spinning hands its core to them.
template <class Ready>
bool spin_until(Ready ready) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto polite = start + std::chrono::microseconds(ThreadPool::kSpinMicros / 10);
  const auto deadline = start + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (ready()) return true;
      _mm_pause();
    }
    const auto now = Clock::now();
    if (now >= deadline) return ready();
    if (now >= polite) std::this_thread::yield();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_relaxed);
    state_.fetch_add(kGeneration, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks() {
  for (;;) {
    const int64_t task = next_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    (*job_)(task);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;  // the generation this worker last acted on
  auto changed = [&] { return (state_.load(std::memory_order_acquire) >> 32) != seen; };
  for (;;) {
    if (!spin_until(changed)) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, changed);
    }
    uint64_t s = state_.load(std::memory_order_acquire);
    seen = s >> 32;
    if (stop_.load(std::memory_order_relaxed)) return;
    if ((seen & 1) == 0) continue;  // that job was already closed
    bool joined = false;
    while ((s >> 32) == seen) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    run_tasks();
    if ((state_.fetch_sub(1, std::memory_order_acq_rel) & kCountMask) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t);
    return;
  }
  job_ = &fn;
  n_tasks_ = n_tasks;
  next_.store(0, std::memory_order_relaxed);
  {
    // Opening under the mutex: a worker about to sleep either sees the new
    // generation in its wait predicate or gets the notification.
    std::lock_guard<std::mutex> lock(mu_);
    state_.fetch_add(kGeneration, std::memory_order_release);
  }
  wake_.notify_all();
  run_tasks();
  // Close once no worker is inside; workers that have not woken yet are not
  // waited for (the tasks are all taken), which matters on a busy machine.
  auto try_close = [&] {
    uint64_t s = state_.load(std::memory_order_acquire);
    while ((s & kCountMask) == 0) {
      if (state_.compare_exchange_weak(s, s + kGeneration, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        return true;
    }
    return false;
  };
  if (!spin_until(try_close)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, try_close);
  }
  job_ = nullptr;
}

}  // namespace nucleus
