// Implementation of preprocess_pool.h. A ParallelFor is one Task whose
// indices are claimed with an atomic counter by whoever runs it (the
// caller and any pool thread that picks it up); the last index finished
// wakes the caller. A pool thread that finds a task with nothing left to
// claim drops it, so a task leaves the queue as soon as it is fully claimed.
#include "server/state/preprocess_pool.h"

#include <atomic>

namespace provp::server {

struct PreprocessPool::Task {
  const std::function<void(int)>* fn = nullptr;
  int n = 0;
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::mutex mu;
  std::condition_variable finished;
};

PreprocessPool::PreprocessPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

PreprocessPool::~PreprocessPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void PreprocessPool::Drain(Task& task) {
  for (int i = task.next.fetch_add(1); i < task.n; i = task.next.fetch_add(1)) {
    (*task.fn)(i);
    if (task.done.fetch_add(1) + 1 == task.n) {
      // Under the task's lock so the caller cannot miss the wake-up between
      // its check and its wait.
      std::lock_guard<std::mutex> lock(task.mu);
      task.finished.notify_all();
    }
  }
}

void PreprocessPool::WorkerLoop() {
  while (true) {
    std::shared_ptr<Task> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
      if (stop_) return;
      task = tasks_.front();
      // Fully claimed tasks leave the queue; others stay for more helpers.
      if (task->next.load() >= task->n - 1) tasks_.pop_front();
    }
    Drain(*task);
  }
}

void PreprocessPool::ParallelFor(int n, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  if (n == 1 || threads_.empty()) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  auto task = std::make_shared<Task>();
  task->fn = &fn;
  task->n = n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(task);
  }
  // Wake as many helpers as there are indices beyond the caller's first.
  if (n - 1 >= threads()) {
    cv_.notify_all();
  } else {
    for (int i = 0; i < n - 1; ++i) cv_.notify_one();
  }
  Drain(*task);
  {
    std::unique_lock<std::mutex> lock(task->mu);
    task->finished.wait(lock, [&] { return task->done.load() == task->n; });
  }
  // A task the caller finished alone may still sit in the queue; take it
  // out so no helper runs it after fn has gone.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = tasks_.begin(); it != tasks_.end(); ++it) {
    if (it->get() == task.get()) {
      tasks_.erase(it);
      break;
    }
  }
}

}  // namespace provp::server
