// Bucket validation, generators and the flag parser.
#include "core/metrics/buckets.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::metrics {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BucketsTest, ValidateDropsTrailingInfAndAcceptsEmpty) {
  auto b = ValidateBuckets({0.1, 1, std::numeric_limits<double>::infinity()});
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(*b, ElementsAre(0.1, 1));
  auto empty = ValidateBuckets({});
  ASSERT_THAT(empty, IsOk());
  EXPECT_TRUE(empty->empty());
}

TEST(BucketsTest, ValidateRejectsUnsortedDuplicateAndNonFinite) {
  EXPECT_THAT(ValidateBuckets({1, 0.5}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateBuckets({1, 1}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateBuckets({std::nan(""), 1}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateBuckets({-std::numeric_limits<double>::infinity(), 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateBuckets(std::vector<double>(kMaxBuckets + 1, 0.0)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BucketsTest, ExponentialMatchesPowersOfTwo) {
  auto b = ExponentialBuckets(1, 2, 9);
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(*b, ElementsAre(1, 2, 4, 8, 16, 32, 64, 128, 256));
  EXPECT_THAT(ExponentialBuckets(0, 2, 3), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ExponentialBuckets(1, 1, 3), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ExponentialBuckets(1, 2, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ExponentialBuckets(1, 2, 1000000), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BucketsTest, Linear) {
  auto b = LinearBuckets(-1, 0.5, 4);
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(*b, ElementsAre(-1, -0.5, 0, 0.5));
  EXPECT_THAT(LinearBuckets(0, 0, 3), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BucketsTest, ParseFlagValue) {
  auto b = ParseBuckets(" 0.005, 0.01,1 ,10");
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(*b, ElementsAre(0.005, 0.01, 1, 10));
  auto bad = ParseBuckets("0.1,abc", "--latency_buckets");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad.status().message(), HasSubstr("--latency_buckets"));
  EXPECT_THAT(bad.status().message(), HasSubstr("abc"));
  EXPECT_THAT(ParseBuckets("1,,2"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseBuckets("2,1"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::metrics
