// Lock-free metric mutators (see metric.h). Doubles are updated with a
// compare-and-swap loop because std::atomic<double>::fetch_add is C++20.
#include "core/metrics/metric.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace provp::metrics {
namespace {

void AtomicAdd(std::atomic<double>& target, double delta) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
  }
}

}  // namespace

void Counter::Increment(double delta) {
  // `!(delta >= 0)` also rejects NaN.
  if (!(delta >= 0.0)) return;
  AtomicAdd(value_, delta);
}

void Gauge::Increment(double delta) { AtomicAdd(value_, delta); }

void Gauge::SetCallback(std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(callback_mu_);
  has_callback_.store(static_cast<bool>(fn), std::memory_order_release);
  callback_ = std::move(fn);
}

double Gauge::Value() const {
  if (has_callback_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(callback_mu_);
    if (callback_) {
      // A scrape must never take the process down because a probe of some
      // other subsystem failed; NaN tells the operator the value is unknown.
      try {
        return callback_();
      } catch (...) {
        return std::numeric_limits<double>::quiet_NaN();
      }
    }
  }
  return value_.load(std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // lower_bound finds the first bound >= value, i.e. the `le` bucket.
  const size_t index = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot snapshot;
  snapshot.upper_bounds = upper_bounds_;
  snapshot.cumulative_counts.resize(upper_bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts[i] = running;
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

}  // namespace provp::metrics
