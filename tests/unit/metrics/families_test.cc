// metrics::MetricFamilies and Family on prometheus-cpp: registration rules
// (as Status, never a throw), the label cap and sanitising, series that
// exist before their first event, exact concurrent totals, the scrape-time
// gauges, and `promtool check metrics` on the serialized text.
#include "core/metrics/families.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/text_serializer.h>

#include "core/metrics/scrape_gauges.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::metrics {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricFamiliesTest, RendersEveryTypeThroughPrometheusCpp) {
  MetricFamilies families;
  auto images = families.AddCounter("provp_images_total", "Images.", {"prompt_set"});
  auto depth = families.AddGauge("provp_queue_depth", "Queue depth.");
  auto latency = families.AddHistogram("provp_latency_seconds", "Latency.", {}, {0.1, 1});
  ASSERT_THAT(images, IsOk());
  ASSERT_THAT(depth, IsOk());
  ASSERT_THAT(latency, IsOk());
  (*images)->WithLabels({"pets"}).Increment(3);
  (*depth)->Get().Set(7);
  (*latency)->Get().Observe(0.1);  // le semantics: 0.1 falls in the 0.1 bucket
  (*latency)->Get().Observe(5);
  const std::string text = SerializeText(*families.registry());
  EXPECT_THAT(text, HasSubstr("# HELP provp_images_total Images.\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE provp_images_total counter\n"));
  EXPECT_THAT(text, HasSubstr("provp_images_total{prompt_set=\"pets\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("provp_queue_depth 7\n"));
  EXPECT_THAT(text, HasSubstr("provp_latency_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("provp_latency_seconds_bucket{le=\"1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("provp_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("provp_latency_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("provp_latency_seconds_sum 5.1"));
}

// prometheus-cpp leaves a family without series out of the exposition, so
// the server creates its known series up front; a created series is a 0.
TEST(MetricFamiliesTest, AFamilyAppearsOnceASeriesIsCreated) {
  MetricFamilies families;
  auto rejected = families.AddCounter("provp_rejected_total", "Rejected.", {"reason"});
  ASSERT_THAT(rejected, IsOk());
  EXPECT_THAT(SerializeText(*families.registry()), Not(HasSubstr("provp_rejected_total")));
  (*rejected)->WithLabels({"queue_full"});
  EXPECT_THAT(SerializeText(*families.registry()),
              HasSubstr("provp_rejected_total{reason=\"queue_full\"} 0\n"));
}

TEST(MetricFamiliesTest, RejectsBadRegistrationsWithoutThrowing) {
  MetricFamilies f;
  EXPECT_THAT(f.AddCounter("1bad_total", "h"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddCounter("provp_no_suffix", "h"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddGauge("provp_g", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  // prometheus-cpp 1.0.1 does not escape HELP: refused rather than corrupt.
  EXPECT_THAT(f.AddGauge("provp_g", "two\nlines"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddGauge("provp_g", "back\\slash"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddGauge("provp_g", "h", {"bad-label"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddGauge("provp_g", "h", {"__reserved"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddGauge("provp_g", "h", {"a", "a"}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddHistogram("provp_h", "h", {"le"}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddHistogram("provp_h", "h", {}, {2, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(f.AddHistogram("provp_h", "h", {}, {1, INFINITY}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  FamilyOptions wrong_fold;
  wrong_fold.fold_labels = {"missing"};
  EXPECT_THAT(f.AddGauge("provp_g", "h", {"a"}, wrong_fold),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Nothing above was registered, so the name is still free.
  EXPECT_THAT(f.AddGauge("provp_g", "h", {"a"}), IsOk());
}

TEST(MetricFamiliesTest, RejectsDuplicatesAndHistogramSeriesCollisions) {
  MetricFamilies f;
  ASSERT_THAT(f.AddHistogram("provp_x", "h", {}, {1}), IsOk());
  EXPECT_THAT(f.AddGauge("provp_x", "h"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(f.AddGauge("provp_x_count", "h"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(f.AddCounter("provp_x_bucket_total", "h"), IsOk());
  ASSERT_THAT(f.AddGauge("provp_y_sum", "h"), IsOk());
  EXPECT_THAT(f.AddHistogram("provp_y", "h", {}, {1}), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST(FamilyTest, WithLabelsReturnsStableReferences) {
  MetricFamilies f;
  auto c = f.AddCounter("provp_c_total", "h", {"a"});
  ASSERT_THAT(c, IsOk());
  Counter& first = (*c)->WithLabels({"x"});
  for (int i = 0; i < 100; ++i) (*c)->WithLabels({"v" + std::to_string(i)});
  EXPECT_EQ(&first, &(*c)->WithLabels({"x"}));
}

TEST(FamilyTest, CapFoldsOnlyTheFoldLabelsAndIsHardBounded) {
  MetricFamilies f;
  FamilyOptions capped;
  capped.max_label_sets = 3;
  capped.fold_labels = {"prompt_set"};
  auto h = f.AddCounter("provp_req_total", "h", {"method", "prompt_set"}, capped);
  ASSERT_THAT(h, IsOk());
  for (int i = 0; i < 3; ++i)
    (*h)->WithLabels({"Classify", "set-" + std::to_string(i)}).Increment();
  (*h)->WithLabels({"Classify", "set-901"}).Increment();
  (*h)->WithLabels({"Classify", "set-902"}).Increment();
  const std::string text = SerializeText(*f.registry());
  EXPECT_THAT(text, HasSubstr("provp_req_total{method=\"Classify\",prompt_set=\"other\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("set-901")));
  EXPECT_EQ((*h)->folded_count(), 2u);
  for (int i = 0; i < 100; ++i) {
    (*h)->WithLabels({"m" + std::to_string(i), "s" + std::to_string(i)}).Increment();
  }
  EXPECT_LE((*h)->size(), 2 * capped.max_label_sets + 1);
}

TEST(FamilyTest, WrongArityAndBadValuesFoldOrAreCut) {
  MetricFamilies f;
  auto g = f.AddGauge("provp_g", "h", {"a", "b"});
  ASSERT_THAT(g, IsOk());
  (*g)->WithLabels({"only-one"}).Set(1);
  (*g)->WithLabels({std::string("\xff\xfe", 2), "ok"}).Set(2);
  (*g)->WithLabels({std::string(300, 'x'), "long"}).Set(3);
  (*g)->WithLabels({"quote\"back\\slash\nnewline", "esc"}).Set(4);
  const std::string text = SerializeText(*f.registry());
  EXPECT_THAT(text, HasSubstr("provp_g{a=\"other\",b=\"other\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("provp_g{a=\"other\",b=\"ok\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("provp_g{a=\"" + std::string(kMaxLabelValueBytes, 'x') +
                              "\",b=\"long\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("a=\"quote\\\"back\\\\slash\\nnewline\""));
}

TEST(FamilyTest, ConcurrentUpdatesGiveExactTotals) {
  MetricFamilies f;
  auto c = f.AddCounter("provp_c_total", "h", {"t"});
  auto h = f.AddHistogram("provp_h_seconds", "h", {"t"}, {0.5});
  ASSERT_THAT(c, IsOk());
  ASSERT_THAT(h, IsOk());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        (*c)->WithLabels({"x"}).Increment();
        (*h)->WithLabels({"x"}).Observe(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string text = SerializeText(*f.registry());
  EXPECT_THAT(text, HasSubstr("provp_c_total{t=\"x\"} 40000\n"));
  EXPECT_THAT(text, HasSubstr("provp_h_seconds_count{t=\"x\"} 40000\n"));
  EXPECT_THAT(text, HasSubstr("provp_h_seconds_sum{t=\"x\"} 40000\n"));
}

TEST(ScrapeTimeGaugesTest, ReadersRunAtEveryCollect) {
  ScrapeTimeGauges gauges;
  double value = 1;
  ASSERT_THAT(gauges.Add("provp_mem_bytes", "Memory.",
                         [&] {
                           return ScrapeTimeGauges::Series{{{{"gpu", "1"}}, value}};
                         }),
              IsOk());
  ASSERT_THAT(gauges.Add("provp_broken", "Throws.",
                         []() -> ScrapeTimeGauges::Series { throw std::runtime_error("x"); }),
              IsOk());
  EXPECT_THAT(gauges.Add("provp_mem_bytes", "again", {}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(gauges.Add("bad name", "h", {}), StatusIs(absl::StatusCode::kInvalidArgument));
  prometheus::TextSerializer serializer;
  EXPECT_THAT(serializer.Serialize(gauges.Collect()), HasSubstr("provp_mem_bytes{gpu=\"1\"} 1\n"));
  value = 4096;
  EXPECT_THAT(serializer.Serialize(gauges.Collect()),
              HasSubstr("provp_mem_bytes{gpu=\"1\"} 4096\n"));
  value = std::nan("");
  EXPECT_THAT(serializer.Serialize(gauges.Collect()), HasSubstr("provp_mem_bytes{gpu=\"1\"} Nan"));
}

// Runs `promtool check metrics` on `text`; returns its exit status.
int Promtool(const std::string& text, std::string* output) {
  char path[] = "/tmp/provp_promtool_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return -1;
  (void)!write(fd, text.data(), text.size());
  close(fd);
  FILE* pipe =
      popen((std::string(PROVP_PROMTOOL) + " check metrics < " + path + " 2>&1").c_str(), "r");
  char buffer[512];
  size_t n;
  while (pipe && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = pipe ? pclose(pipe) : -1;
  std::remove(path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(MetricFamiliesTest, SerializedTextPassesPromtoolCheckMetrics) {
  ASSERT_EQ(access(PROVP_PROMTOOL, X_OK), 0)
      << PROVP_PROMTOOL << " is missing: install the Debian package 'prometheus'";
  MetricFamilies f;
  auto rpc = f.AddCounter("grpc_server_handled_total", "RPCs completed.",
                          {"grpc_service", "grpc_method", "grpc_type", "grpc_code"});
  auto latency = f.AddHistogram("provp_request_duration_seconds", "Request latency.",
                                {"method", "prompt_set"}, {0.005, 0.01, 0.1, 1, 10});
  auto info = f.AddGauge("provp_build_info", "Build info.", {"version"});
  auto odd = f.AddGauge("provp_odd_values", "Odd label values.", {"v"});
  ASSERT_THAT(rpc, IsOk());
  ASSERT_THAT(latency, IsOk());
  ASSERT_THAT(info, IsOk());
  ASSERT_THAT(odd, IsOk());
  (*rpc)->WithLabels({"provp.v1.ClassificationService", "Classify", "unary", "OK"}).Increment(5);
  (*latency)->WithLabels({"Classify", "zero_shot"}).Observe(0.02);
  (*info)->WithLabels({"0.1.0"}).Set(1);
  (*odd)->WithLabels({"a\"b\\c\nd"}).Set(INFINITY);
  std::string output;
  const std::string text = SerializeText(*f.registry());
  EXPECT_EQ(Promtool(text, &output), 0) << output << "\n" << text;
}

}  // namespace
}  // namespace provp::metrics
