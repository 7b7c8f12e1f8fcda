// Bucket validation and generators (see buckets.h).
#include "core/metrics/buckets.h"

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace provp::metrics {
namespace {

absl::Status CheckCount(int count) {
  if (count < 1 || static_cast<size_t>(count) > kMaxBuckets) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket count must be in [1, ", kMaxBuckets, "], got ", count));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<double>> ValidateBuckets(std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  if (bounds.size() > kMaxBuckets) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many buckets: ", bounds.size(), " > ", kMaxBuckets));
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("bucket bound #", i, " is not finite: ", bounds[i]));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat("bucket bounds must strictly increase: #",
                                                     i - 1, "=", bounds[i - 1], " then #", i, "=",
                                                     bounds[i]));
    }
  }
  return bounds;
}

absl::StatusOr<std::vector<double>> ExponentialBuckets(double start, double factor, int count) {
  if (absl::Status s = CheckCount(count); !s.ok()) return s;
  if (!(start > 0) || !(factor > 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exponential buckets need start > 0 and factor > 1, got ", start, " and ", factor));
  }
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(count));
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return ValidateBuckets(std::move(bounds));
}

absl::StatusOr<std::vector<double>> LinearBuckets(double start, double width, int count) {
  if (absl::Status s = CheckCount(count); !s.ok()) return s;
  if (!(width > 0) || !std::isfinite(start)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "linear buckets need a finite start and width > 0, got ", start, " and ", width));
  }
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  return ValidateBuckets(std::move(bounds));
}

absl::StatusOr<std::vector<double>> ParseBuckets(absl::string_view text, absl::string_view what) {
  std::vector<double> bounds;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    double value = 0;
    if (item.empty() || !absl::SimpleAtod(item, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": '", item, "' is not a number (want e.g. 0.005,0.01,0.1)"));
    }
    if (bounds.size() >= kMaxBuckets + 1) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": more than ", kMaxBuckets, " bounds"));
    }
    bounds.push_back(value);
  }
  absl::StatusOr<std::vector<double>> valid = ValidateBuckets(std::move(bounds));
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", valid.status().message()));
  }
  return valid;
}

}  // namespace provp::metrics
