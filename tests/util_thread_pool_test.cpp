// ThreadPool: every task runs exactly once, for many back-to-back calls (the
// spin/sleep hand-over between caller and workers), after workers have gone
// to sleep, and for more threads than tasks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "util/thread_pool.h"

namespace nucleus {
namespace {

void expect_each_task_once(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  pool.parallel_for(n, [&](int64_t t) { hits[static_cast<size_t>(t)].fetch_add(1); });
  for (int64_t t = 0; t < n; ++t)
    ASSERT_EQ(hits[static_cast<size_t>(t)].load(), 1) << "task " << t << " of " << n;
}

TEST(ThreadPool, RunsEveryTaskOnceForAnyCount) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000}) expect_each_task_once(pool, n);
  }
}

TEST(ThreadPool, ManyBackToBackCalls) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int call = 0; call < 20000; ++call) {
    pool.parallel_for(4, [&](int64_t t) { sum.fetch_add(t + 1, std::memory_order_relaxed); });
  }
  EXPECT_EQ(sum.load(), 20000 * 10);
}

TEST(ThreadPool, WorksAfterWorkersSleep) {
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(3 * ThreadPool::kSpinMicros));
    expect_each_task_once(pool, 16);
  }
}

TEST(ThreadPool, ResultsDoNotDependOnThreads) {
  std::vector<double> a(4096), b(4096);
  auto fill = [](ThreadPool& pool, std::vector<double>& out) {
    pool.parallel_for(static_cast<int64_t>(out.size()),
                      [&](int64_t t) { out[static_cast<size_t>(t)] = 0.5 * t; });
  };
  ThreadPool one(1), four(4);
  fill(one, a);
  fill(four, b);
  EXPECT_EQ(a, b);
}

TEST(ThreadPool, DestroysWhileIdle) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(4);
    if (i % 2) expect_each_task_once(pool, 8);
  }
}

}  // namespace
}  // namespace nucleus
