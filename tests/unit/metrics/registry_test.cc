// Registry, families and metric values: exact totals under concurrency,
// histogram bucket math, the label-set cap, label sanitising and the
// registration checks.
#include "core/metrics/registry.h"

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::metrics {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

FamilyOptions Cap(size_t max_label_sets, std::vector<std::string> fold_labels = {}) {
  FamilyOptions options;
  options.max_label_sets = max_label_sets;
  options.fold_labels = std::move(fold_labels);
  return options;
}

constexpr int kThreads = 8;
constexpr int kPerThread = 50000;

template <typename Fn>
void RunThreads(Fn fn) {
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(fn, t);
  for (std::thread& t : threads) t.join();
}

TEST(CounterTest, ConcurrentIncrementsGiveExactTotal) {
  Registry registry;
  auto family = registry.AddCounter("test_events_total", "Events.", {"kind"});
  ASSERT_THAT(family, IsOk());
  RunThreads([&](int t) {
    // Half the threads look the label set up on every call (the slow path
    // racing creation), half cache the reference (the hot path).
    Counter& cached = (*family)->WithLabels({"a"});
    for (int i = 0; i < kPerThread; ++i) {
      if (t % 2 == 0) {
        (*family)->WithLabels({"a"}).Increment();
      } else {
        cached.Increment();
      }
      (*family)->WithLabels({"b"}).Increment(0.5);
    }
  });
  EXPECT_EQ((*family)->WithLabels({"a"}).Value(), kThreads * kPerThread);
  EXPECT_EQ((*family)->WithLabels({"b"}).Value(), kThreads * kPerThread * 0.5);
  EXPECT_EQ((*family)->size(), 2u);
}

TEST(GaugeTest, ConcurrentIncrementDecrementBalances) {
  Registry registry;
  auto family = registry.AddGauge("test_inflight", "In flight.");
  ASSERT_THAT(family, IsOk());
  Gauge& g = (*family)->Get();
  RunThreads([&](int t) {
    for (int i = 0; i < kPerThread; ++i) {
      g.Increment(t + 1);
      g.Decrement(t + 1);
    }
    g.Increment();
  });
  EXPECT_EQ(g.Value(), kThreads);
  g.Set(-2.5);
  EXPECT_EQ(g.Value(), -2.5);
}

TEST(HistogramTest, ConcurrentObservationsGiveExactCountAndSum) {
  Registry registry;
  auto family = registry.AddHistogram("test_size", "Sizes.", {}, {1, 2, 4});
  ASSERT_THAT(family, IsOk());
  Histogram& h = (*family)->Get();
  RunThreads([&](int t) {
    for (int i = 0; i < kPerThread; ++i) h.Observe(static_cast<double>(i % 5));
  });
  const HistogramSnapshot s = h.Snapshot();
  const uint64_t n = static_cast<uint64_t>(kThreads) * kPerThread;
  EXPECT_EQ(s.count, n);
  EXPECT_EQ(s.cumulative_counts.back(), n);
  // Values cycle 0,1,2,3,4: sum = n/5 * 10, exact in double at this size.
  EXPECT_EQ(s.sum, static_cast<double>(n / 5 * 10));
  // le=1 holds {0,1}, le=2 adds {2}, le=4 adds {3,4}.
  EXPECT_THAT(s.cumulative_counts, ElementsAre(n / 5 * 2, n / 5 * 3, n, n));
}

TEST(HistogramTest, BucketBoundariesFollowLeSemantics) {
  Histogram h({1, 2, 5});
  for (double v : {-1.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, std::nan("")}) h.Observe(v);
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_THAT(s.upper_bounds, ElementsAre(1, 2, 5));
  EXPECT_THAT(s.cumulative_counts, ElementsAre(3, 5, 7, 8));  // NaN dropped
  EXPECT_EQ(s.count, 8u);
  EXPECT_DOUBLE_EQ(s.sum, -1 + 0.5 + 1 + 1.5 + 2 + 3 + 5 + 7);
  h.Observe(std::numeric_limits<double>::infinity());
  EXPECT_EQ(h.Snapshot().cumulative_counts.back(), 9u);
}

TEST(CounterTest, IgnoresNegativeAndNaN) {
  Counter c;
  c.Increment(2);
  c.Increment(-1);
  c.Increment(std::nan(""));
  EXPECT_EQ(c.Value(), 2);
}

TEST(GaugeTest, CallbackIsEvaluatedAtReadTime) {
  Registry registry;
  auto family = registry.AddGauge("test_memory_bytes", "Memory.", {"gpu"});
  ASSERT_THAT(family, IsOk());
  Gauge& g = (*family)->WithLabels({"0"});
  g.Set(7);
  double probe = 100;
  g.SetCallback([&probe] { return probe; });
  EXPECT_EQ(g.Value(), 100);
  probe = 200;
  auto snapshot = registry.Collect();
  ASSERT_EQ(snapshot.size(), 1u);
  ASSERT_EQ(snapshot[0].metrics.size(), 1u);
  EXPECT_EQ(snapshot[0].metrics[0].value, 200);
  g.SetCallback([]() -> double { throw std::runtime_error("device gone"); });
  EXPECT_TRUE(std::isnan(g.Value()));
  g.SetCallback(nullptr);
  EXPECT_EQ(g.Value(), 7);
}

TEST(FamilyTest, WithLabelsReturnsStableReferences) {
  Registry registry;
  auto family = registry.AddCounter("test_stable_total", "Stable.", {"k"}, Cap(1000));
  ASSERT_THAT(family, IsOk());
  Counter* first = &(*family)->WithLabels({"first"});
  for (int i = 0; i < 500; ++i) (*family)->WithLabels({std::to_string(i)});
  EXPECT_EQ(&(*family)->WithLabels({"first"}), first);
  EXPECT_NE(&(*family)->WithLabels({"0"}), first);
  EXPECT_EQ((*family)->size(), 501u);
  EXPECT_EQ((*family)->folded_count(), 0u);
}

TEST(FamilyTest, CapFoldsOnlyTheFoldLabelsIntoOther) {
  Registry registry;
  auto family = registry.AddCounter("test_requests_total", "Requests.", {"method", "prompt_set"},
                                    Cap(3, {"prompt_set"}));
  ASSERT_THAT(family, IsOk());
  for (int i = 0; i < 5; ++i)
    (*family)->WithLabels({"Classify", "set" + std::to_string(i)}).Increment();
  EXPECT_EQ((*family)->size(), 4u);  // set0..set2 + (Classify, other)
  EXPECT_EQ((*family)->folded_count(), 2u);
  EXPECT_EQ((*family)->WithLabels({"Classify", "other"}).Value(), 2);
  // Label sets admitted before the cap still resolve to themselves.
  EXPECT_EQ((*family)->WithLabels({"Classify", "set1"}).Value(), 1);

  const FamilySnapshot s = (*family)->Collect();
  double total = 0;
  std::set<std::string> prompt_sets;
  for (const MetricSnapshot& m : s.metrics) {
    total += m.value;
    prompt_sets.insert(m.labels[1].second);
  }
  EXPECT_EQ(total, 5);  // nothing lost
  EXPECT_EQ(prompt_sets, (std::set<std::string>{"other", "set0", "set1", "set2"}));
}

TEST(FamilyTest, SeriesCountIsHardBounded) {
  Registry registry;
  constexpr size_t kCap = 4;
  auto family = registry.AddCounter("test_bounded_total", "Bounded.", {"method", "prompt_set"},
                                    Cap(kCap, {"prompt_set"}));
  ASSERT_THAT(family, IsOk());
  for (int i = 0; i < 200; ++i) {
    (*family)->WithLabels({"m" + std::to_string(i), "p" + std::to_string(i)}).Increment();
  }
  EXPECT_EQ((*family)->size(), 2 * kCap + 1);
  EXPECT_EQ((*family)->WithLabels({"other", "other"}).Value(), 200 - 2 * kCap);
}

TEST(FamilyTest, WrongArityFoldsIntoOther) {
  Registry registry;
  auto family = registry.AddGauge("test_arity", "Arity.", {"a", "b"});
  ASSERT_THAT(family, IsOk());
  (*family)->WithLabels({"only-one"}).Set(3);
  EXPECT_EQ((*family)->folded_count(), 1u);
  EXPECT_EQ((*family)->WithLabels({"other", "other"}).Value(), 3);
}

TEST(FamilyTest, LabelValuesAreSanitised) {
  Registry registry;
  auto family = registry.AddCounter("test_sanitise_total", "Sanitise.", {"v"});
  ASSERT_THAT(family, IsOk());
  (*family)
      ->WithLabels({std::string("a\xff"
                                "b")})
      .Increment();
  (*family)->WithLabels({std::string(1000, 'x')}).Increment();
  // 64 two-byte characters plus one more: the cut must not split it.
  std::string accents;
  for (int i = 0; i < 65; ++i) accents += "\xC3\xA9";
  (*family)->WithLabels({"z" + accents}).Increment();
  const FamilySnapshot s = (*family)->Collect();
  ASSERT_EQ(s.metrics.size(), 3u);
  EXPECT_EQ(s.metrics[0].labels[0].second,
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(s.metrics[1].labels[0].second, std::string(kMaxLabelValueBytes, 'x'));
  const std::string& cut = s.metrics[2].labels[0].second;
  EXPECT_EQ(cut.size(), kMaxLabelValueBytes - 1);
  EXPECT_EQ(cut, "z" + accents.substr(0, kMaxLabelValueBytes - 2));
}

TEST(RegistryTest, RejectsBadRegistrations) {
  Registry registry;
  EXPECT_THAT(registry.AddGauge("1bad", "h"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddGauge("bad-name", "h"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddGauge("ok_name", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  auto no_total = registry.AddCounter("requests", "h");
  EXPECT_THAT(no_total, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(no_total.status().message(), HasSubstr("_total"));
  EXPECT_THAT(registry.AddGauge("g1", "h", {"__reserved"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddGauge("g2", "h", {"a", "a"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddGauge("g3", "h", {"bad label"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddHistogram("h1", "h", {"le"}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddHistogram("h2", "h", {}, {2, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry.AddGauge("g4", "h", {"a"}, Cap(0)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto bad_fold = registry.AddGauge("g5", "h", {"a"}, Cap(100, {"b"}));
  EXPECT_THAT(bad_fold, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad_fold.status().message(), HasSubstr("'b'"));
  EXPECT_TRUE(registry.FamilyNames().empty());
}

TEST(RegistryTest, RejectsDuplicateNamesAndSeriesCollisions) {
  Registry registry;
  ASSERT_THAT(registry.AddHistogram("test_latency_seconds", "h", {}, {1}), IsOk());
  EXPECT_THAT(registry.AddGauge("test_latency_seconds", "h"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.AddGauge("test_latency_seconds_count", "h"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_THAT(registry.AddGauge("test_thing_sum", "h"), IsOk());
  EXPECT_THAT(registry.AddHistogram("test_thing", "h", {}, {1}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(registry.FamilyNames(), ElementsAre("test_latency_seconds", "test_thing_sum"));
}

TEST(RegistryTest, CollectIsOrderedByNameAndLabels) {
  Registry registry;
  auto b = registry.AddGauge("b_gauge", "B.", {"x"});
  auto a = registry.AddCounter("a_total", "A.");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  (*b)->WithLabels({"z"}).Set(1);
  (*b)->WithLabels({"m"}).Set(2);
  const auto s = registry.Collect();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "a_total");
  EXPECT_TRUE(s[0].metrics.empty());
  EXPECT_EQ(s[1].name, "b_gauge");
  ASSERT_EQ(s[1].metrics.size(), 2u);
  EXPECT_THAT(s[1].metrics[0].labels, ElementsAre(Pair("x", "m")));
  EXPECT_THAT(s[1].metrics[1].labels, ElementsAre(Pair("x", "z")));
}

}  // namespace
}  // namespace provp::metrics
