// The PromQL name scan that the deploy checks rely on: it must find every
// metric (or the checks pass vacuously) and nothing else.
#include "tests/deploy/promql_names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace provp::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(PromqlNamesTest, FindsSelectorsInsideFunctionsAndAggregations) {
  EXPECT_THAT(MetricNamesInPromQL("histogram_quantile(0.99, sum by (le, method) "
                                  "(rate(provp_request_duration_seconds_bucket{job=~\"$job\",le!="
                                  "\"}\"}[$__rate_interval])))"),
              ElementsAre("provp_request_duration_seconds_bucket"));
  EXPECT_THAT(MetricNamesInPromQL("sum(rate(a_total[5m])) by (x) / ignoring(instance) group_left "
                                  "sum(b_total offset 1h) > bool 0.5 and on() up == 0"),
              ElementsAre("a_total", "b_total", "up"));
  EXPECT_THAT(MetricNamesInPromQL("max by (instance, gpu) (reserved_bytes) / scalar(total_bytes)"),
              ElementsAre("reserved_bytes", "total_bytes"));
  EXPECT_THAT(MetricNamesInPromQL("absent(up{job=\"provp\"})"), ElementsAre("up"));
  EXPECT_THAT(MetricNamesInPromQL("DCGM_FI_DEV_GPU_UTIL"), ElementsAre("DCGM_FI_DEV_GPU_UTIL"));
}

TEST(PromqlNamesTest, IgnoresNumbersDurationsVariablesAndStrings) {
  EXPECT_THAT(MetricNamesInPromQL("1e3 + 0.5 * 2 > Inf"), IsEmpty());
  EXPECT_THAT(MetricNamesInPromQL("vector(1) * ${scale} + $x"), IsEmpty());
  EXPECT_THAT(MetricNamesInPromQL("label_replace(m, \"dst\", \"$1\", \"src\", \"(.*)\")"),
              ElementsAre("m"));
}

TEST(PromqlNamesTest, FamilyOfSampleStripsHistogramSuffixesOnly) {
  auto is_hist = [](const std::string& n) { return n == "lat_seconds"; };
  EXPECT_EQ(FamilyOfSample("lat_seconds_bucket", is_hist), "lat_seconds");
  EXPECT_EQ(FamilyOfSample("lat_seconds_count", is_hist), "lat_seconds");
  EXPECT_EQ(FamilyOfSample("other_count", is_hist), "other_count");
  EXPECT_EQ(FamilyOfSample("lat_seconds", is_hist), "lat_seconds");
}

}  // namespace
}  // namespace provp::testing
