// Metric families on prometheus-cpp (Debian prometheus-cpp-dev 1.0.1): the
// process's prometheus::Registry holds every family and series and renders
// them (TextSerializer); this file adds what prometheus-cpp leaves to the
// caller: registration that reports bad names as absl::Status instead of
// throwing, and a cardinality cap for labels fed from request data.
// Thread-safety: everything may be called concurrently. WithLabels() takes a
// shared lock (exclusive only when it creates a series), so hot paths call it
// once and keep the returned reference, valid for the MetricFamilies' life.
//
//   MetricFamilies families;
//   auto images = families.AddCounter("provp_classify_images_total", "Images classified.",
//                                     {"prompt_set"});
//   if (!images.ok()) return images.status();
//   (*images)->WithLabels({"default"}).Increment(batch);
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::metrics {

using Counter = prometheus::Counter;
using Gauge = prometheus::Gauge;
using Histogram = prometheus::Histogram;

// The label value that over-cap (and malformed) label sets fold into.
inline constexpr absl::string_view kOverflowLabelValue = "other";
// Longer label values are cut (at a UTF-8 character boundary) so a caller
// passing request data cannot make a series of unbounded size.
inline constexpr size_t kMaxLabelValueBytes = 128;

struct FamilyOptions {
  // Cardinality cap. The first `max_label_sets` distinct label sets are kept
  // as given. After that a new label set has its `fold_labels` replaced by
  // "other" ({"Classify", "set-901"} becomes {"Classify", "other"} with
  // fold_labels = {"prompt_set"}); folded sets may grow the family to
  // 2 * max_label_sets, beyond which every label is "other". So a family
  // never holds more than 2 * max_label_sets + 1 series and no observation is
  // lost. Must be >= 1.
  size_t max_label_sets = 100;
  // Labels that fold when the cap is reached; empty = all of them.
  std::vector<std::string> fold_labels;
};

// A prometheus::Family<T> seen through fixed label names and the cap.
template <typename T>
class Family {
 public:
  Family(prometheus::Family<T>* family, std::vector<std::string> label_names, FamilyOptions options,
         prometheus::Histogram::BucketBoundaries buckets);
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The series for these label values (one per label name, in order),
  // created on first use. Never fails: values are cut to
  // kMaxLabelValueBytes, invalid UTF-8 and a wrong number of values (a
  // programming error) become "other", and label sets beyond the cap fold as
  // FamilyOptions says.
  T& WithLabels(const std::vector<std::string>& values);
  // The single series of a family without labels.
  T& Get() { return WithLabels({}); }

  const std::vector<std::string>& label_names() const { return label_names_; }
  // Series held, and how many WithLabels() calls were folded.
  size_t size() const;
  uint64_t folded_count() const { return folded_.load(std::memory_order_relaxed); }

 private:
  std::vector<std::string> Normalize(const std::vector<std::string>& values);
  std::vector<std::string> AdmitLocked(std::vector<std::string> key);  // mu_ held exclusively

  prometheus::Family<T>* const family_;
  const std::vector<std::string> label_names_;
  const FamilyOptions options_;
  const prometheus::Histogram::BucketBoundaries buckets_;  // histograms only
  std::vector<bool> fold_mask_;
  std::atomic<uint64_t> folded_{0};
  // std::shared_mutex (not absl::Mutex) so ThreadSanitizer, which cannot see
  // inside Debian's uninstrumented Abseil, checks this locking too.
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, T*> series_;  // owned by family_; guarded by mu_
};

// Owns a prometheus::Registry (duplicate names refused) and the Family views.
// Names: Prometheus rules (prometheus::CheckMetricName/CheckLabelName),
// counters end in `_total`, help text required and free of backslashes and
// newlines (prometheus-cpp 1.0.1 writes HELP unescaped), histograms may not use the
// label `le`, no name may collide with a histogram's _bucket/_sum/_count
// series. Violations are INVALID_ARGUMENT, a second registration of a name
// ALREADY_EXISTS.
class MetricFamilies {
 public:
  MetricFamilies();
  MetricFamilies(const MetricFamilies&) = delete;
  MetricFamilies& operator=(const MetricFamilies&) = delete;

  absl::StatusOr<Family<Counter>*> AddCounter(absl::string_view name, absl::string_view help,
                                              std::vector<std::string> label_names = {},
                                              FamilyOptions options = {});
  absl::StatusOr<Family<Gauge>*> AddGauge(absl::string_view name, absl::string_view help,
                                          std::vector<std::string> label_names = {},
                                          FamilyOptions options = {});
  // `buckets`: finite, strictly increasing upper bounds (+Inf is implied).
  absl::StatusOr<Family<Histogram>*> AddHistogram(absl::string_view name, absl::string_view help,
                                                  std::vector<std::string> label_names,
                                                  prometheus::Histogram::BucketBoundaries buckets,
                                                  FamilyOptions options = {});

  // What an exposer or serializer collects.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  absl::Status CheckNew(absl::string_view name, absl::string_view help, absl::string_view type,
                        const std::vector<std::string>& label_names, const FamilyOptions& options);

  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex mu_;
  std::map<std::string, std::string> sample_owner_;  // sample name -> family; guarded by mu_
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
};

// Renders every family of `registry` in the text exposition format 0.0.4
// (prometheus::TextSerializer).
std::string SerializeText(const prometheus::Registry& registry);

}  // namespace provp::metrics
