// Dynamic batching of image encoding across concurrent requests (Triton's
// dynamic batcher idea): a worker takes the oldest request and waits up to
// max_queue_delay for more, up to max_batch_size images, then runs one
// engine call and hands each request its rows. With mix_prompt_sets (the
// default) one call carries requests of different prompt sets and
// zero-shot ones (Engine::EncodeImagesMixed: sets of one prompt shape share
// a forward, zero-shot images get their own); without it, only requests of
// the oldest request's prompt set. Requests whose deadline passed or
// whose client went away are dropped before the model runs. The queue is
// bounded in images: beyond it Reserve (and Encode) fail with
// RESOURCE_EXHAUSTED. A request takes its place in the queue with Reserve
// before its images are decoded, so one that cannot be queued is refused
// before it costs a decode (under a flood the refusals stay cheap and the
// admitted requests keep the cores).
// Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/engine/engine.h"
#include "server/state/limits.h"

namespace provp::server {

struct BatchResult {
  engine::FeatureMatrix features;
  double queue_seconds = 0.0;
  double compute_seconds = 0.0;
  // Images in the execution this request was part of.
  int batch_size = 0;
};

// Observers for metrics; any may be empty.
struct BatcherHooks {
  std::function<void(int batch_images)> on_execution;
  std::function<void(const std::string& prompt_set, double queue_seconds)> on_dequeue;
  std::function<void(const std::string& reason)> on_reject;
  std::function<void(int queued_images)> on_queue_depth;
};

class Batcher {
 public:
  // Queue capacity for up to images() images, held from before a request's
  // images are decoded until Encode queues them. Destroying an unused
  // reservation gives the capacity back. Move-only; must not outlive its
  // Batcher.
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation();
    int images() const { return images_; }

   private:
    friend class Batcher;
    Reservation(Batcher* batcher, int images) : batcher_(batcher), images_(images) {}
    void Release();

    Batcher* batcher_ = nullptr;
    int images_ = 0;
  };

  Batcher(engine::Engine* engine, BatchingOptions options, BatcherHooks hooks = {});
  ~Batcher();  // Stops the workers; queued requests fail with UNAVAILABLE.

  // Holds room for `images` images in the queue, or fails at once:
  // RESOURCE_EXHAUSTED (QUEUE_FULL, with a retry delay) when the queued and
  // reserved images leave no room, UNAVAILABLE while shutting down. As with
  // the queue itself, one request is always admitted into an empty queue,
  // however large.
  absl::StatusOr<Reservation> Reserve(int images);

  // Encodes `images` in the place `reservation` holds (at most
  // reservation.images() of them; INVALID_ARGUMENT otherwise, or when it
  // belongs to another Batcher). See Encode below for the rest.
  absl::StatusOr<BatchResult> Encode(Reservation reservation, const std::string& prompt_set,
                                     std::vector<const engine::Image*> images, absl::Time deadline,
                                     std::function<bool()> cancelled);

  // Encodes `images` (with the prompt set, "" = none) as part of a batch:
  // Reserve, then the Encode above. Blocks until done, the deadline passes
  // (DEADLINE_EXCEEDED) or `cancelled` returns true (CANCELLED).
  absl::StatusOr<BatchResult> Encode(const std::string& prompt_set,
                                     std::vector<const engine::Image*> images, absl::Time deadline,
                                     std::function<bool()> cancelled);

  // Images queued right now.
  int queued_images() const;

 private:
  struct Item;
  void WorkerLoop();
  // Whether `item` may join an execution led by a request of `set`.
  bool Batchable(const Item& item, const std::string& set) const;
  // Runs one execution's requests and finishes each of them.
  void Execute(const std::vector<std::shared_ptr<Item>>& batch, const std::string& set, int images,
               absl::Time now);

  engine::Engine* const engine_;
  const BatchingOptions options_;
  const BatcherHooks hooks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Item>> queue_;
  int queued_images_ = 0;    // guarded by mu_
  int reserved_images_ = 0;  // guarded by mu_; held by live Reservations
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace provp::server
