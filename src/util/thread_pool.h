#pragma once
// A persistent pool of worker threads. parallel_for hands out task indices
// [0, n) to the calling thread and the workers; results never depend on which
// thread ran a task, so kernels that write disjoint outputs per task are
// deterministic for any thread count.
//
// Decode calls parallel_for hundreds of times per token on small matrices, so
// a sleeping worker's wake-up latency (tens of microseconds through a futex)
// would dominate. Workers and the caller therefore spin for a short while
// (kSpinMicros) before falling back to the condition variable.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nucleus {

class ThreadPool {
 public:
  // n_threads counts the caller: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task) for every task in [0, n_tasks) and returns when all are done.
  // Not reentrant: call it from one thread at a time, never from inside fn.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t task)>& fn);

  // How long an idle thread polls before sleeping.
  static constexpr int kSpinMicros = 200;

 private:
  void worker_loop();
  void run_tasks();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // Written by the caller before it opens a generation in state_; read by
  // workers after they see it.
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<bool> stop_{false};
  // High 32 bits: generation, odd while a job is open to join; low 32 bits:
  // workers inside the open job. The caller closes a job (count 0 -> next
  // even generation) before returning, so a worker that wakes late can never
  // touch job_ again, and a worker that never woke is not waited for.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> next_{0};
};

}  // namespace nucleus
