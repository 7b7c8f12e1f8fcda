// Metric values: Counter, Gauge and Histogram, plus the plain snapshot types
// the text format reads. Every mutator is lock-free (atomics; doubles are
// added with a compare-and-swap loop), so they are safe and cheap to call
// from any number of threads on the request hot path. Instances are owned by
// a Family (registry.h) and live as long as their Registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace provp::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// Cumulative view of one histogram at one instant.
struct HistogramSnapshot {
  std::vector<double> upper_bounds;         // finite, strictly increasing
  std::vector<uint64_t> cumulative_counts;  // size upper_bounds + 1; last is +Inf
  double sum = 0.0;
  uint64_t count = 0;  // equals cumulative_counts.back()
};

// One labelled time series of a family.
struct MetricSnapshot {
  std::vector<std::pair<std::string, std::string>> labels;  // (name, value)
  double value = 0.0;                                       // counter / gauge
  HistogramSnapshot histogram;                              // histogram only
};

// Everything the exposition format needs about one metric family.
struct FamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<MetricSnapshot> metrics;  // sorted by label values
};

// Monotonic counter. Negative and NaN increments are ignored (a counter that
// goes down reads as a process restart to Prometheus' rate()).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(double delta = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Value that goes up and down, or that is computed at scrape time by a
// callback (device memory, cache sizes owned elsewhere).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double delta = 1.0);
  void Decrement(double delta = 1.0) { Increment(-delta); }

  // From now on Value() (and every scrape) returns fn() instead of the stored
  // value. fn runs on the scraping thread, must be thread-safe and fast, and
  // must not call back into the registry. An empty fn restores the stored
  // value. A callback that throws reads as NaN.
  void SetCallback(std::function<double()> fn);

  double Value() const;

 private:
  std::atomic<double> value_{0.0};
  std::atomic<bool> has_callback_{false};
  mutable std::mutex callback_mu_;
  std::function<double()> callback_;  // guarded by callback_mu_
};

// Distribution with fixed bucket upper bounds (Prometheus `le` semantics: a
// value v lands in the first bucket with v <= bound; above every bound it
// lands in the implicit +Inf bucket). NaN observations are dropped.
class Histogram {
 public:
  // `upper_bounds` must be finite and strictly increasing (Registry checks it
  // before it builds one; see ValidateBuckets in buckets.h).
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);

  // Consistent enough for scraping: each bucket is read atomically, and count
  // is derived from the buckets so `+Inf` always equals `_count`.
  HistogramSnapshot Snapshot() const;

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  // Per-bucket (non-cumulative) counts; the last one is the +Inf bucket.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

}  // namespace provp::metrics
