// Registry of metric families (API shaped after prometheus-cpp): a Family has
// a fixed list of label names and owns one metric per label-value set.
// Thread-safety: everything here may be called concurrently. WithLabels()
// takes a shared lock (exclusive only when it creates a label set), so hot
// paths call it once and keep the returned reference, which stays valid for
// the Registry's lifetime. Families are never removed.
//
//   auto family = registry.AddCounter("provp_classify_images_total", "Images classified.",
//                                     {"prompt_set"});
//   if (!family.ok()) return family.status();
//   Counter& images = (*family)->WithLabels({"default"});   // cache this
//   images.Increment(batch);
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/metrics/metric.h"

namespace provp::metrics {

// The label value that over-cap (and malformed) label sets fold into.
inline constexpr absl::string_view kOverflowLabelValue = "other";
// Longer label values are cut (at a UTF-8 character boundary) so that a
// caller passing request data cannot make a series of unbounded size.
inline constexpr size_t kMaxLabelValueBytes = 128;

struct FamilyOptions {
  // Cardinality cap. The first `max_label_sets` distinct label sets are kept
  // as given. After that a new label set has its `fold_labels` replaced by
  // "other" (so {"Classify", "set-901"} becomes {"Classify", "other"} when
  // fold_labels = {"prompt_set"}); such folded sets may grow the family to
  // 2 * max_label_sets, and beyond that every label is "other". A family
  // therefore never holds more than 2 * max_label_sets + 1 series, and no
  // observation is ever lost. Must be >= 1.
  size_t max_label_sets = 100;
  // Labels that fold when the cap is reached; empty = all of them. Each must
  // be one of the family's label names.
  std::vector<std::string> fold_labels;
};

// Type-independent part of a family: name, help, label handling.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Number of label sets (series) currently held.
  virtual size_t size() const = 0;
  // How many WithLabels() calls were folded (cap reached or wrong arity).
  uint64_t folded_count() const { return folded_.load(std::memory_order_relaxed); }

  // Point-in-time copy of every series, ordered by label values.
  virtual FamilySnapshot Collect() const = 0;

 protected:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names, FamilyOptions options);

  // Returns the key WithLabels() should use for `values`: sanitised, and
  // folded when the cap says so. `exists` tells whether a key is already
  // present. Called with mu_ held exclusively.
  std::vector<std::string> AdmitKeyLocked(
      std::vector<std::string> key,
      const std::function<bool(const std::vector<std::string>&)>& exists, size_t current_size);
  // Sanitises label values (UTF-8, length); wrong arity maps to all-"other".
  std::vector<std::string> NormalizeValues(const std::vector<std::string>& values);

  std::vector<std::pair<std::string, std::string>> LabelPairs(
      const std::vector<std::string>& values) const;

  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
  const FamilyOptions options_;
  std::vector<bool> fold_mask_;  // per label: folds at the cap
  std::atomic<uint64_t> folded_{0};
  // Guards the derived class's metric map. A std::shared_mutex (not
  // absl::Mutex) so ThreadSanitizer, which cannot see inside the distro's
  // uninstrumented Abseil, checks this locking too.
  mutable std::shared_mutex mu_;
};

namespace internal {
inline void FillSnapshot(const Counter& m, MetricSnapshot* out) { out->value = m.Value(); }
inline void FillSnapshot(const Gauge& m, MetricSnapshot* out) { out->value = m.Value(); }
inline void FillSnapshot(const Histogram& m, MetricSnapshot* out) { out->histogram = m.Snapshot(); }
}  // namespace internal

// A family of T (Counter, Gauge or Histogram) sharing name, help and label
// names. Created only by Registry.
template <typename T>
class Family final : public FamilyBase {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;

  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         FamilyOptions options, Factory factory)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names),
                   std::move(options)),
        factory_(std::move(factory)) {}

  // The metric for these label values (one per label name, in order),
  // created on first use. Never fails: values are sanitised, and a wrong
  // number of values (a programming error) or a label set beyond the cap
  // folds into "other" as FamilyOptions describes. The reference stays valid
  // for the Registry's lifetime.
  T& WithLabels(const std::vector<std::string>& values) {
    std::vector<std::string> key = NormalizeValues(values);
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = metrics_.find(key);
      if (it != metrics_.end()) return *it->second;
    }
    std::unique_lock<std::shared_mutex> lock(mu_);
    auto it = metrics_.find(key);
    if (it != metrics_.end()) return *it->second;
    key = AdmitKeyLocked(
        std::move(key), [this](const std::vector<std::string>& k) { return metrics_.count(k) > 0; },
        metrics_.size());
    std::unique_ptr<T>& slot = metrics_[key];
    if (!slot) slot = factory_();
    return *slot;
  }

  // The single metric of a family without labels.
  T& Get() { return WithLabels({}); }

  size_t size() const override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    return metrics_.size();
  }

  FamilySnapshot Collect() const override {
    FamilySnapshot snapshot;
    snapshot.name = name_;
    snapshot.help = help_;
    snapshot.type = type_;
    std::shared_lock<std::shared_mutex> lock(mu_);
    snapshot.metrics.reserve(metrics_.size());
    for (const auto& [values, metric] : metrics_) {
      MetricSnapshot m;
      m.labels = LabelPairs(values);
      internal::FillSnapshot(*metric, &m);
      snapshot.metrics.push_back(std::move(m));
    }
    return snapshot;
  }

 private:
  const Factory factory_;
  // std::map keeps exposition order deterministic; unique_ptr keeps the
  // references handed out stable across inserts.
  std::map<std::vector<std::string>, std::unique_ptr<T>> metrics_;  // guarded by mu_
};

// Owns families. Names follow Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*);
// counters must end in `_total`; help text is required; label names are
// [a-zA-Z_][a-zA-Z0-9_]*, not `__`-prefixed, unique, and histograms may not
// use `le`. Registering a name twice, or a name that collides with another
// family's series (`x_count` vs histogram `x`), is ALREADY_EXISTS.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  absl::StatusOr<Family<Counter>*> AddCounter(absl::string_view name, absl::string_view help,
                                              std::vector<std::string> label_names = {},
                                              FamilyOptions options = {});
  absl::StatusOr<Family<Gauge>*> AddGauge(absl::string_view name, absl::string_view help,
                                          std::vector<std::string> label_names = {},
                                          FamilyOptions options = {});
  // `buckets`: upper bounds, see ValidateBuckets() in buckets.h.
  absl::StatusOr<Family<Histogram>*> AddHistogram(absl::string_view name, absl::string_view help,
                                                  std::vector<std::string> label_names,
                                                  std::vector<double> buckets,
                                                  FamilyOptions options = {});

  // Snapshot of every family, ordered by name (deterministic exposition).
  std::vector<FamilySnapshot> Collect() const;
  // Registered family names, sorted.
  std::vector<std::string> FamilyNames() const;

 private:
  absl::Status CheckNewLocked(absl::string_view name, absl::string_view help, MetricType type,
                              const std::vector<std::string>& label_names,
                              const FamilyOptions& options) const;  // mu_ held
  void InsertLocked(std::unique_ptr<FamilyBase> family);            // mu_ held

  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;  // guarded by mu_
  // Every sample name any family emits (histogram x -> x_bucket, x_sum,
  // x_count), mapped to the family that emits it. Guarded by mu_.
  std::map<std::string, std::string> series_owner_;
};

}  // namespace provp::metrics
