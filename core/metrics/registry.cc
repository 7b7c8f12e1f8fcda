// Family label handling (sanitising, cardinality cap) and the Registry's
// name checks. See registry.h for the contract.
#include "core/metrics/registry.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/metrics/buckets.h"

namespace provp::metrics {
namespace {

constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[i], or 0 when invalid.
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  const size_t left = s.size() - i;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && IsContinuation(at(i + 1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !IsContinuation(at(i + 1)) || !IsContinuation(at(i + 2))) return 0;
    if (c == 0xE0 && at(i + 1) < 0xA0) return 0;  // overlong
    if (c == 0xED && at(i + 1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !IsContinuation(at(i + 1)) || !IsContinuation(at(i + 2)) ||
        !IsContinuation(at(i + 3))) {
      return 0;
    }
    if (c == 0xF0 && at(i + 1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && at(i + 1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Valid UTF-8 (bad bytes become U+FFFD; the exposition format is UTF-8) and
// at most kMaxLabelValueBytes long, cut at a character boundary.
std::string SanitizeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(std::min(value.size(), kMaxLabelValueBytes));
  size_t i = 0;
  while (i < value.size()) {
    const size_t n = Utf8SequenceLength(value, i);
    const absl::string_view piece = n == 0 ? kReplacementChar : value.substr(i, n);
    if (out.size() + piece.size() > kMaxLabelValueBytes) break;
    out.append(piece.data(), piece.size());
    i += n == 0 ? 1 : n;
  }
  return out;
}

bool IsValidMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::StartsWith(name, "__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> SeriesNames(absl::string_view name, MetricType type) {
  if (type == MetricType::kHistogram) {
    return {absl::StrCat(name, "_bucket"), absl::StrCat(name, "_sum"),
            absl::StrCat(name, "_count")};
  }
  return {std::string(name)};
}

}  // namespace

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names, FamilyOptions options)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      options_(std::move(options)),
      fold_mask_(label_names_.size(), options_.fold_labels.empty()) {
  for (const std::string& fold : options_.fold_labels) {
    auto it = std::find(label_names_.begin(), label_names_.end(), fold);
    if (it != label_names_.end()) fold_mask_[static_cast<size_t>(it - label_names_.begin())] = true;
  }
}

std::vector<std::string> FamilyBase::NormalizeValues(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    // A caller bug; folding keeps the observation and keeps the server up.
    folded_.fetch_add(1, std::memory_order_relaxed);
    return std::vector<std::string>(label_names_.size(), std::string(kOverflowLabelValue));
  }
  std::vector<std::string> key;
  key.reserve(values.size());
  for (const std::string& v : values) key.push_back(SanitizeLabelValue(v));
  return key;
}

std::vector<std::string> FamilyBase::AdmitKeyLocked(
    std::vector<std::string> key,
    const std::function<bool(const std::vector<std::string>&)>& exists, size_t current_size) {
  if (current_size < options_.max_label_sets) return key;
  folded_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < key.size(); ++i) {
    if (fold_mask_[i]) key[i] = std::string(kOverflowLabelValue);
  }
  if (exists(key) || current_size < 2 * options_.max_label_sets) return key;
  return std::vector<std::string>(label_names_.size(), std::string(kOverflowLabelValue));
}

std::vector<std::pair<std::string, std::string>> FamilyBase::LabelPairs(
    const std::vector<std::string>& values) const {
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) pairs.emplace_back(label_names_[i], values[i]);
  return pairs;
}

absl::Status Registry::CheckNewLocked(absl::string_view name, absl::string_view help,
                                      MetricType type, const std::vector<std::string>& label_names,
                                      const FamilyOptions& options) const {
  if (!IsValidMetricName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name '", name, "' must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  if (help.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("metric '", name, "' needs help text"));
  }
  if (type == MetricType::kCounter && !absl::EndsWith(name, "_total")) {
    return absl::InvalidArgumentError(
        absl::StrCat("counter '", name, "' must end in _total (Prometheus naming)"));
  }
  std::set<std::string> seen;
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric '", name, "': label name '", label,
                       "' must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"));
    }
    if (type == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram '", name, "' may not use the reserved label 'le'"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric '", name, "': label '", label, "' appears twice"));
    }
  }
  if (options.max_label_sets < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric '", name, "': max_label_sets must be >= 1"));
  }
  for (const std::string& fold : options.fold_labels) {
    if (seen.count(fold) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("metric '", name, "': fold label '", fold,
                                                     "' is not one of its labels [",
                                                     absl::StrJoin(label_names, ", "), "]"));
    }
  }
  if (families_.count(std::string(name)) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("metric '", name, "' is already registered"));
  }
  for (const std::string& series : SeriesNames(name, type)) {
    auto it = series_owner_.find(series);
    if (it != series_owner_.end()) {
      return absl::AlreadyExistsError(absl::StrCat("metric '", name, "' would emit '", series,
                                                   "', which metric '", it->second, "' emits"));
    }
    if (families_.count(series) > 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric '", name, "' would emit '", series, "', a registered metric"));
    }
  }
  for (const auto& [owner, family] : families_) {
    for (const std::string& series : SeriesNames(owner, family->type())) {
      if (series == name) {
        return absl::AlreadyExistsError(
            absl::StrCat("metric name '", name, "' is a series of metric '", owner, "'"));
      }
    }
  }
  return absl::OkStatus();
}

void Registry::InsertLocked(std::unique_ptr<FamilyBase> family) {
  for (const std::string& series : SeriesNames(family->name(), family->type())) {
    series_owner_[series] = family->name();
  }
  const std::string name = family->name();
  families_[name] = std::move(family);
}

absl::StatusOr<Family<Counter>*> Registry::AddCounter(absl::string_view name,
                                                      absl::string_view help,
                                                      std::vector<std::string> label_names,
                                                      FamilyOptions options) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (absl::Status s = CheckNewLocked(name, help, MetricType::kCounter, label_names, options);
      !s.ok()) {
    return s;
  }
  auto family = std::make_unique<Family<Counter>>(
      std::string(name), std::string(help), MetricType::kCounter, std::move(label_names),
      std::move(options), [] { return std::make_unique<Counter>(); });
  Family<Counter>* out = family.get();
  InsertLocked(std::move(family));
  return out;
}

absl::StatusOr<Family<Gauge>*> Registry::AddGauge(absl::string_view name, absl::string_view help,
                                                  std::vector<std::string> label_names,
                                                  FamilyOptions options) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (absl::Status s = CheckNewLocked(name, help, MetricType::kGauge, label_names, options);
      !s.ok()) {
    return s;
  }
  auto family = std::make_unique<Family<Gauge>>(
      std::string(name), std::string(help), MetricType::kGauge, std::move(label_names),
      std::move(options), [] { return std::make_unique<Gauge>(); });
  Family<Gauge>* out = family.get();
  InsertLocked(std::move(family));
  return out;
}

absl::StatusOr<Family<Histogram>*> Registry::AddHistogram(absl::string_view name,
                                                          absl::string_view help,
                                                          std::vector<std::string> label_names,
                                                          std::vector<double> buckets,
                                                          FamilyOptions options) {
  absl::StatusOr<std::vector<double>> bounds = ValidateBuckets(std::move(buckets));
  if (!bounds.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram '", name, "': ", bounds.status().message()));
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (absl::Status s = CheckNewLocked(name, help, MetricType::kHistogram, label_names, options);
      !s.ok()) {
    return s;
  }
  auto family = std::make_unique<Family<Histogram>>(
      std::string(name), std::string(help), MetricType::kHistogram, std::move(label_names),
      std::move(options), [b = *std::move(bounds)] { return std::make_unique<Histogram>(b); });
  Family<Histogram>* out = family.get();
  InsertLocked(std::move(family));
  return out;
}

std::vector<FamilySnapshot> Registry::Collect() const {
  // Families are never removed and own their metrics, so collecting each
  // outside the registry lock is safe and keeps gauge callbacks from
  // blocking registration.
  std::vector<const FamilyBase*> families;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  std::vector<FamilySnapshot> out;
  out.reserve(families.size());
  for (const FamilyBase* family : families) out.push_back(family->Collect());
  return out;
}

std::vector<std::string> Registry::FamilyNames() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<std::string> names;
  names.reserve(families_.size());
  for (const auto& [name, family] : families_) names.push_back(name);
  return names;
}

}  // namespace provp::metrics
