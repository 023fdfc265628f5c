#pragma once
// httplib's default TaskQueue is a fixed pool (8 threads here): each
// connection holds a worker for as long as it is open, so 8 long SSE
// streams would leave nobody to answer /health or accept another request.
// This queue gives every connection its own thread, up to a generous cap;
// beyond it connections wait (FIFO) for a thread to free up.
#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace nucleus::server {

class ConnectionQueue final : public httplib::TaskQueue {
 public:
  explicit ConnectionQueue(size_t max_threads) : max_threads_(max_threads) {}
  ~ConnectionQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override;
  // Waits until every connection's thread has finished.
  void shutdown() override;

  size_t active() const;

 private:
  void run(std::function<void()> fn);

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> waiting_;
  size_t running_ = 0;
};

}  // namespace nucleus::server
