// Finds the metric names a PromQL expression reads, so tests can check
// dashboards and alert rules against deploy/metrics.txt (and, in the live
// server test, against a real /metrics scrape). A lexical scan, not a full
// parser: good for the query shapes in deploy/. Pure functions; thread-safe.
#pragma once

#include <set>
#include <string>

#include "absl/strings/string_view.h"

namespace provp::testing {

// Metric names selected by `expr`: identifiers that are not functions,
// aggregations, keywords, label names in matchers or grouping clauses,
// numbers, durations or Grafana variables ($job, ${x}, $__rate_interval).
// `rate(provp_x_bucket{le="1"}[5m])` gives {"provp_x_bucket"}.
std::set<std::string> MetricNamesInPromQL(absl::string_view expr);

// The family a sample name belongs to: `x_bucket`, `x_sum` and `x_count` map
// to `x` when `is_histogram(x)`; anything else maps to itself.
template <typename IsHistogram>
std::string FamilyOfSample(const std::string& name, IsHistogram is_histogram) {
  for (absl::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(),
                                                    suffix.data(), suffix.size()) == 0) {
      std::string base = name.substr(0, name.size() - suffix.size());
      if (is_histogram(base)) return base;
    }
  }
  return name;
}

}  // namespace provp::testing
