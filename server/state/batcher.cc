// Implementation of batcher.h. Items hand results back through their own
// mutex/condition variable so a finished batch wakes only its requests.
#include "server/state/batcher.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"

namespace provp::server {

struct Batcher::Item {
  std::string prompt_set;
  std::vector<const engine::Image*> images;
  absl::Time deadline;
  std::function<bool()> cancelled;
  absl::Time enqueued;

  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::StatusOr<BatchResult> result = absl::UnknownError("pending");

  void Finish(absl::StatusOr<BatchResult> r) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(r);
    done = true;
    cv.notify_all();
  }
};

Batcher::Batcher(engine::Engine* engine, BatchingOptions options, BatcherHooks hooks)
    : engine_(engine), options_(options), hooks_(std::move(hooks)) {
  int n = std::max(1, options_.num_workers);
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  for (auto& item : queue_) {
    item->Finish(
        MakeError(absl::StatusCode::kUnavailable, "SHUTTING_DOWN", "server is shutting down"));
  }
}

Batcher::Reservation::Reservation(Reservation&& other) noexcept
    : batcher_(other.batcher_), images_(other.images_) {
  other.batcher_ = nullptr;
  other.images_ = 0;
}

Batcher::Reservation& Batcher::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    batcher_ = other.batcher_;
    images_ = other.images_;
    other.batcher_ = nullptr;
    other.images_ = 0;
  }
  return *this;
}

Batcher::Reservation::~Reservation() { Release(); }

void Batcher::Reservation::Release() {
  if (batcher_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(batcher_->mu_);
    batcher_->reserved_images_ -= images_;
  }
  batcher_ = nullptr;
  images_ = 0;
}

absl::StatusOr<Batcher::Reservation> Batcher::Reserve(int images) {
  if (images < 0) return absl::InvalidArgumentError("cannot reserve a negative number of images");
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    return MakeError(absl::StatusCode::kUnavailable, "SHUTTING_DOWN", "server is shutting down");
  }
  const int held = queued_images_ + reserved_images_;
  if (held > 0 && held + images > options_.max_queue_images) {
    if (hooks_.on_reject) hooks_.on_reject("queue_full");
    return ResourceExhausted(
        "QUEUE_FULL", "inference_queue",
        absl::StrCat("inference queue is full (", queued_images_, " images queued and ",
                     reserved_images_, " being decoded, limit ", options_.max_queue_images,
                     "); retry later"),
        /*retry_after_ms=*/100);
  }
  reserved_images_ += images;
  return Reservation(this, images);
}

int Batcher::queued_images() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_images_;
}

absl::StatusOr<BatchResult> Batcher::Encode(const std::string& prompt_set,
                                            std::vector<const engine::Image*> images,
                                            absl::Time deadline, std::function<bool()> cancelled) {
  ASSIGN_OR_RETURN(Reservation reservation, Reserve(static_cast<int>(images.size())));
  return Encode(std::move(reservation), prompt_set, std::move(images), deadline,
                std::move(cancelled));
}

absl::StatusOr<BatchResult> Batcher::Encode(Reservation reservation, const std::string& prompt_set,
                                            std::vector<const engine::Image*> images,
                                            absl::Time deadline, std::function<bool()> cancelled) {
  if (reservation.batcher_ != this || images.size() > static_cast<size_t>(reservation.images_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batcher: ", images.size(), " images do not fit the reservation of ", reservation.images_,
        reservation.batcher_ != this ? " (another batcher)" : ""));
  }
  auto item = std::make_shared<Item>();
  item->prompt_set = prompt_set;
  item->images = std::move(images);
  item->deadline = deadline;
  item->cancelled = std::move(cancelled);
  item->enqueued = absl::Now();
  const int n = static_cast<int>(item->images.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      // The reservation gives its room back when it goes out of scope,
      // after this lock is released.
      return MakeError(absl::StatusCode::kUnavailable, "SHUTTING_DOWN", "server is shutting down");
    }
    // The reserved room becomes queued images (fewer when some of the
    // request's images did not decode).
    reserved_images_ -= reservation.images_;
    reservation.batcher_ = nullptr;
    reservation.images_ = 0;
    queue_.push_back(item);
    queued_images_ += n;
    if (hooks_.on_queue_depth) hooks_.on_queue_depth(queued_images_);
  }
  cv_.notify_all();
  // Wait for the result; on our own deadline, leave the item for the worker
  // to drop (it checks the deadline before running the model).
  std::unique_lock<std::mutex> lock(item->mu);
  while (!item->done) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      if (hooks_.on_reject) hooks_.on_reject("deadline");
      return MakeError(absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED",
                       "deadline exceeded while queued for inference");
    }
    // Wake periodically to notice client cancellation.
    auto wait = std::min(absl::ToChronoMilliseconds(left), std::chrono::milliseconds(50));
    item->cv.wait_for(lock, wait);
    if (!item->done && item->cancelled && item->cancelled()) {
      return MakeError(absl::StatusCode::kCancelled, "CANCELLED", "request cancelled by client");
    }
  }
  return std::move(item->result);
}

bool Batcher::Batchable(const Item& item, const std::string& set) const {
  return options_.mix_prompt_sets || item.prompt_set == set;
}

void Batcher::Execute(const std::vector<std::shared_ptr<Item>>& batch, const std::string& set,
                      int images, absl::Time now) {
  std::vector<const engine::Image*> all;
  std::vector<std::string> sets;
  all.reserve(images);
  bool one_set = true;
  for (auto& b : batch) {
    all.insert(all.end(), b->images.begin(), b->images.end());
    sets.insert(sets.end(), b->images.size(), b->prompt_set);
    one_set = one_set && b->prompt_set == set;
    if (hooks_.on_dequeue) {
      hooks_.on_dequeue(b->prompt_set, absl::ToDoubleSeconds(now - b->enqueued));
    }
  }
  absl::Time start = absl::Now();
  absl::StatusOr<engine::FeatureMatrix> features =
      one_set ? engine_->EncodeImages(all, set) : engine_->EncodeImagesMixed(all, sets);
  if (features.ok() && (features->rows != images ||
                        features->data.size() != static_cast<size_t>(images * features->dim))) {
    features = absl::InternalError("engine returned a feature matrix of the wrong size");
  }
  if (!one_set && !features.ok()) {
    // One request's failure (say, a prompt set unloaded meanwhile) must
    // not fail the others: run each request alone to attribute it.
    for (auto& b : batch) {
      absl::Time own_start = absl::Now();
      absl::StatusOr<engine::FeatureMatrix> own = engine_->EncodeImages(b->images, b->prompt_set);
      if (!own.ok()) {
        b->Finish(own.status());
        continue;
      }
      BatchResult r;
      r.queue_seconds = absl::ToDoubleSeconds(now - b->enqueued);
      r.compute_seconds = absl::ToDoubleSeconds(absl::Now() - own_start);
      r.batch_size = static_cast<int>(b->images.size());
      r.features = std::move(*own);
      b->Finish(std::move(r));
    }
    return;
  }
  double compute = absl::ToDoubleSeconds(absl::Now() - start);
  if (hooks_.on_execution) hooks_.on_execution(images);
  int64_t row = 0;
  for (auto& b : batch) {
    if (!features.ok()) {
      b->Finish(features.status());
      continue;
    }
    BatchResult r;
    r.queue_seconds = absl::ToDoubleSeconds(now - b->enqueued);
    r.compute_seconds = compute;
    r.batch_size = images;
    r.features.rows = static_cast<int64_t>(b->images.size());
    r.features.dim = features->dim;
    r.features.data.assign(features->data.begin() + row * features->dim,
                           features->data.begin() + (row + r.features.rows) * features->dim);
    row += r.features.rows;
    b->Finish(std::move(r));
  }
}

void Batcher::WorkerLoop() {
  const absl::Duration max_delay = absl::Microseconds(options_.max_queue_delay_us);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    // The oldest request decides the prompt set and the flush time.
    std::shared_ptr<Item> head = queue_.front();
    const std::string set = head->prompt_set;
    absl::Time flush_at = head->enqueued + max_delay;
    while (!stopping_) {
      int same = 0;
      for (const auto& it : queue_) {
        if (Batchable(*it, set)) same += static_cast<int>(it->images.size());
      }
      if (same >= options_.max_batch_size || absl::Now() >= flush_at) break;
      cv_.wait_for(lock, absl::ToChronoMicroseconds(flush_at - absl::Now()));
      if (queue_.empty() || queue_.front() != head) break;  // another worker took it
    }
    if (stopping_) return;
    if (queue_.empty()) continue;
    // Take requests of this prompt set, FIFO, up to the batch size (the
    // first one always, even when larger than the batch size).
    std::vector<std::shared_ptr<Item>> batch;
    std::vector<std::shared_ptr<Item>> dropped;
    int images = 0;
    absl::Time now = absl::Now();
    for (auto it = queue_.begin(); it != queue_.end();) {
      const auto& item = *it;
      if (!Batchable(*item, set)) {
        ++it;
        continue;
      }
      int n = static_cast<int>(item->images.size());
      bool expired = item->deadline <= now;
      bool gone = item->cancelled && item->cancelled();
      if (expired || gone) {
        dropped.push_back(item);
        queued_images_ -= n;
        it = queue_.erase(it);
        continue;
      }
      if (!batch.empty() && images + n > options_.max_batch_size) break;
      batch.push_back(item);
      images += n;
      queued_images_ -= n;
      it = queue_.erase(it);
    }
    if (hooks_.on_queue_depth) hooks_.on_queue_depth(queued_images_);
    lock.unlock();
    for (auto& d : dropped) {
      bool expired = d->deadline <= now;
      if (expired && hooks_.on_reject) hooks_.on_reject("deadline");
      d->Finish(expired ? MakeError(absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED",
                                    "deadline exceeded while queued; dropped before inference")
                        : MakeError(absl::StatusCode::kCancelled, "CANCELLED",
                                    "request cancelled by client"));
    }
    if (!batch.empty()) Execute(batch, set, images, now);
    lock.lock();
  }
}

}  // namespace provp::server
