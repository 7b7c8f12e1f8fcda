// Histogram bucket boundaries: validation, the usual generators, and a parser
// for comma-separated flag values (bucket boundaries are configurable by
// flag, API-GUIDE 3.4). Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::metrics {

// Upper limit on explicit buckets per histogram: each bucket is one series
// per label set, so more than this is a cardinality bug, not a need.
inline constexpr size_t kMaxBuckets = 128;

// Checks that bounds are finite, strictly increasing and at most kMaxBuckets
// long, and returns them without a trailing +Inf (the text format always adds
// the +Inf bucket itself). An empty list is valid: only +Inf, i.e. a summary
// of count and sum.
absl::StatusOr<std::vector<double>> ValidateBuckets(std::vector<double> bounds);

// start, start*factor, ... (`count` bounds). Needs start > 0, factor > 1.
absl::StatusOr<std::vector<double>> ExponentialBuckets(double start, double factor, int count);

// start, start+width, ... (`count` bounds). Needs width > 0.
absl::StatusOr<std::vector<double>> LinearBuckets(double start, double width, int count);

// Parses "0.005,0.01,0.1,1" (spaces allowed) and validates the result. The
// error names `what` (e.g. the flag name) and the offending item.
absl::StatusOr<std::vector<double>> ParseBuckets(absl::string_view text,
                                                 absl::string_view what = "buckets");

}  // namespace provp::metrics
