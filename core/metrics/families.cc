// Implementation of families.h. Series live in prometheus-cpp's families;
// this keeps only the label-set -> series map the cap needs.
#include "core/metrics/families.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <prometheus/check_names.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace provp::metrics {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t Utf8SequenceAt(absl::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  }
  return n;
}

// Cut to kMaxLabelValueBytes at a character boundary; invalid UTF-8 -> "other".
std::string SanitizeValue(const std::string& value) {
  size_t end = 0;
  while (end < value.size()) {
    const size_t n = Utf8SequenceAt(value, end);
    if (n == 0) return std::string(kOverflowLabelValue);
    if (end + n > kMaxLabelValueBytes) break;
    end += n;
  }
  return value.substr(0, end);
}

}  // namespace

template <typename T>
Family<T>::Family(prometheus::Family<T>* family, std::vector<std::string> label_names,
                  FamilyOptions options, prometheus::Histogram::BucketBoundaries buckets)
    : family_(family),
      label_names_(std::move(label_names)),
      options_(std::move(options)),
      buckets_(std::move(buckets)) {
  for (const std::string& name : label_names_) {
    fold_mask_.push_back(options_.fold_labels.empty() ||
                         std::find(options_.fold_labels.begin(), options_.fold_labels.end(),
                                   name) != options_.fold_labels.end());
  }
}

template <typename T>
std::vector<std::string> Family<T>::Normalize(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    folded_.fetch_add(1, std::memory_order_relaxed);
    return std::vector<std::string>(label_names_.size(), std::string(kOverflowLabelValue));
  }
  std::vector<std::string> out;
  out.reserve(values.size());
  for (const std::string& v : values) out.push_back(SanitizeValue(v));
  return out;
}

template <typename T>
std::vector<std::string> Family<T>::AdmitLocked(std::vector<std::string> key) {
  if (series_.size() < options_.max_label_sets) return key;
  folded_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < key.size(); ++i) {
    if (fold_mask_[i]) key[i] = std::string(kOverflowLabelValue);
  }
  if (series_.count(key) > 0 || series_.size() < 2 * options_.max_label_sets) return key;
  return std::vector<std::string>(key.size(), std::string(kOverflowLabelValue));
}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& values) {
  std::vector<std::string> key = Normalize(values);
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = series_.find(key);
    if (it != series_.end()) return *it->second;
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (auto it = series_.find(key); it != series_.end()) return *it->second;
  key = AdmitLocked(std::move(key));
  if (auto it = series_.find(key); it != series_.end()) return *it->second;
  prometheus::Labels labels;
  for (size_t i = 0; i < key.size(); ++i) labels[label_names_[i]] = key[i];
  T* series;
  if constexpr (std::is_same_v<T, Histogram>) {
    series = &family_->Add(labels, buckets_);
  } else {
    series = &family_->Add(labels);
  }
  series_[key] = series;
  return *series;
}

template <typename T>
size_t Family<T>::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return series_.size();
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

MetricFamilies::MetricFamilies()
    : registry_(
          std::make_shared<prometheus::Registry>(prometheus::Registry::InsertBehavior::Throw)) {}

absl::Status MetricFamilies::CheckNew(absl::string_view name, absl::string_view help,
                                      absl::string_view type,
                                      const std::vector<std::string>& label_names,
                                      const FamilyOptions& options) {
  const std::string n(name);
  if (!prometheus::CheckMetricName(n)) {
    return absl::InvalidArgumentError(absl::StrCat("metric name '", name, "' is not valid"));
  }
  if (help.empty())
    return absl::InvalidArgumentError(absl::StrCat(name, ": help text is required"));
  // prometheus-cpp 1.0.1's TextSerializer writes HELP unescaped, so a
  // backslash or newline there would break the exposition for every scrape.
  if (help.find_first_of("\\\n") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": help text may not contain a backslash or newline"));
  }
  if (type == "counter" && !absl::EndsWith(name, "_total")) {
    return absl::InvalidArgumentError(absl::StrCat("counter '", name, "' must end in _total"));
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!prometheus::CheckLabelName(l) || absl::StartsWith(l, "__")) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": label name '", l, "' is not valid"));
    }
    if (type == "histogram" && l == "le") {
      return absl::InvalidArgumentError(absl::StrCat(name, ": histograms may not use label 'le'"));
    }
    if (std::find(label_names.begin(), label_names.begin() + i, l) != label_names.begin() + i) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": label '", l, "' given twice"));
    }
  }
  if (options.max_label_sets < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": max_label_sets must be >= 1"));
  }
  for (const std::string& f : options.fold_labels) {
    if (std::find(label_names.begin(), label_names.end(), f) == label_names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": fold label '", f, "' is not a label of the family"));
    }
  }
  // Every sample name the family emits must be free.
  std::vector<std::string> samples = {n};
  if (type == "histogram") {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) samples.push_back(n + suffix);
  }
  for (const std::string& s : samples) {
    auto it = sample_owner_.find(s);
    if (it != sample_owner_.end()) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric '", name, "' collides with family '", it->second, "'"));
    }
  }
  for (const std::string& s : samples) sample_owner_[s] = n;
  return absl::OkStatus();
}

absl::StatusOr<Family<Counter>*> MetricFamilies::AddCounter(absl::string_view name,
                                                            absl::string_view help,
                                                            std::vector<std::string> label_names,
                                                            FamilyOptions options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = CheckNew(name, help, "counter", label_names, options); !s.ok()) return s;
  try {
    auto& family = prometheus::BuildCounter()
                       .Name(std::string(name))
                       .Help(std::string(help))
                       .Register(*registry_);
    counters_.push_back(
        std::make_unique<Family<Counter>>(&family, std::move(label_names), std::move(options),
                                          prometheus::Histogram::BucketBoundaries{}));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("metric '", name, "': ", e.what()));
  }
  return counters_.back().get();
}

absl::StatusOr<Family<Gauge>*> MetricFamilies::AddGauge(absl::string_view name,
                                                        absl::string_view help,
                                                        std::vector<std::string> label_names,
                                                        FamilyOptions options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = CheckNew(name, help, "gauge", label_names, options); !s.ok()) return s;
  try {
    auto& family = prometheus::BuildGauge()
                       .Name(std::string(name))
                       .Help(std::string(help))
                       .Register(*registry_);
    gauges_.push_back(std::make_unique<Family<Gauge>>(&family, std::move(label_names),
                                                      std::move(options),
                                                      prometheus::Histogram::BucketBoundaries{}));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("metric '", name, "': ", e.what()));
  }
  return gauges_.back().get();
}

absl::StatusOr<Family<Histogram>*> MetricFamilies::AddHistogram(
    absl::string_view name, absl::string_view help, std::vector<std::string> label_names,
    prometheus::Histogram::BucketBoundaries buckets, FamilyOptions options) {
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": buckets must be finite and strictly increasing"));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status s = CheckNew(name, help, "histogram", label_names, options); !s.ok()) return s;
  try {
    auto& family = prometheus::BuildHistogram()
                       .Name(std::string(name))
                       .Help(std::string(help))
                       .Register(*registry_);
    histograms_.push_back(std::make_unique<Family<Histogram>>(
        &family, std::move(label_names), std::move(options), std::move(buckets)));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("metric '", name, "': ", e.what()));
  }
  return histograms_.back().get();
}

std::string SerializeText(const prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace provp::metrics
