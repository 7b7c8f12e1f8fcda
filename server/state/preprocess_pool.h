// The server's preprocessing pool: decoding and resizing of request images
// run here, in parallel, so the batch worker that runs the model receives
// ready crops (issue 11). A fixed set of threads (--preprocess-threads)
// shared by all requests; the calling RPC thread works on its own request
// too, so a request never waits idle for a free pool thread and a pool of
// 0 threads means "on the RPC thread". Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace provp::server {

class PreprocessPool {
 public:
  explicit PreprocessPool(int threads);
  ~PreprocessPool();  // Joins the threads; no ParallelFor may be running.

  PreprocessPool(const PreprocessPool&) = delete;
  PreprocessPool& operator=(const PreprocessPool&) = delete;

  // Runs fn(0) ... fn(n - 1), each once, on the pool's threads and the
  // caller's, and returns when all have returned. fn must not throw.
  void ParallelFor(int n, const std::function<void(int)>& fn);

  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  struct Task;
  void WorkerLoop();
  static void Drain(Task& task);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Task>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace provp::server
