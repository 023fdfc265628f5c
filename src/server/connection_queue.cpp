#include "server/connection_queue.h"

#include <cstdio>
#include <thread>

namespace nucleus::server {

void ConnectionQueue::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mu_);
  if (running_ >= max_threads_) {
    waiting_.push_back(std::move(fn));
    return;
  }
  ++running_;
  lock.unlock();
  try {
    std::thread(&ConnectionQueue::run, this, std::move(fn)).detach();
  } catch (const std::system_error&) {
    // No thread to be had: the connection waits for one that ends.
    lock.lock();
    --running_;
    waiting_.push_back(std::move(fn));
  }
}

void ConnectionQueue::run(std::function<void()> fn) {
  for (;;) {
    try {
      fn();
    } catch (...) {
      // httplib handles its own errors; nothing may escape a detached thread.
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_.empty()) {
      --running_;
      // Notify under the lock: once running_ is 0, shutdown() may return
      // and the queue be destroyed.
      idle_.notify_all();
      return;
    }
    fn = std::move(waiting_.front());
    waiting_.pop_front();
  }
}

void ConnectionQueue::shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return running_ == 0 && waiting_.empty(); });
}

size_t ConnectionQueue::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

}  // namespace nucleus::server
