// Text exposition format: number spelling, escaping, the exact rendering of
// a small registry, and `promtool check metrics` on a rich one.
#include "core/metrics/text_format.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::metrics {
namespace {

using ::provp::testing::IsOk;

TEST(FormatDoubleTest, SpellsSpecialValuesLikePrometheus) {
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatDouble(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatDouble(0), "0");
  EXPECT_EQ(FormatDouble(1), "1");
  EXPECT_EQ(FormatDouble(0.005), "0.005");
  EXPECT_EQ(FormatDouble(-2.5), "-2.5");
  EXPECT_EQ(FormatDouble(256), "256");
}

TEST(FormatDoubleTest, RoundTripsExactly) {
  for (double v : {0.1, 1.0 / 3.0, 1e6, 1.5e-9, 12345678901234567.0, 6.02214076e23,
                   std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
                   std::numeric_limits<double>::denorm_min()}) {
    const std::string s = FormatDouble(v);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
    // Go's ParseFloat takes digits, '.', 'e', sign; nothing locale-specific.
    EXPECT_EQ(s.find_first_not_of("0123456789.e+-"), std::string::npos) << s;
  }
}

TEST(EscapeTest, HelpEscapesBackslashAndNewlineOnly) {
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");
}

TEST(EscapeTest, LabelValueEscapesBackslashQuoteNewline) {
  EXPECT_EQ(EscapeLabelValue("a\\b\nc\"d"), "a\\\\b\\nc\\\"d");
  EXPECT_EQ(EscapeLabelValue("plain é"), "plain é");
}

TEST(SerializeTextTest, RendersEveryTypeExactly) {
  Registry registry;
  auto counter =
      registry.AddCounter("demo_images_total", "Images seen.\nSecond line.", {"prompt_set"});
  auto gauge = registry.AddGauge("demo_queue_depth", "Queue depth.");
  auto hist =
      registry.AddHistogram("demo_latency_seconds", "Latency \\ time.", {"method"}, {0.5, 1});
  auto empty = registry.AddGauge("demo_unused", "Never set.", {"x"});
  ASSERT_THAT(counter, IsOk());
  ASSERT_THAT(gauge, IsOk());
  ASSERT_THAT(hist, IsOk());
  ASSERT_THAT(empty, IsOk());
  (*counter)->WithLabels({"pets \"v2\""}).Increment(3);
  (*counter)->WithLabels({"a\\b\nc"}).Increment();
  (*gauge)->Get().Set(-1.5);
  Histogram& h = (*hist)->WithLabels({"Classify"});
  h.Observe(0.25);
  h.Observe(0.75);
  h.Observe(4);

  EXPECT_EQ(SerializeText(registry),
            "# HELP demo_images_total Images seen.\\nSecond line.\n"
            "# TYPE demo_images_total counter\n"
            "demo_images_total{prompt_set=\"a\\\\b\\nc\"} 1\n"
            "demo_images_total{prompt_set=\"pets \\\"v2\\\"\"} 3\n"
            "# HELP demo_latency_seconds Latency \\\\ time.\n"
            "# TYPE demo_latency_seconds histogram\n"
            "demo_latency_seconds_bucket{method=\"Classify\",le=\"0.5\"} 1\n"
            "demo_latency_seconds_bucket{method=\"Classify\",le=\"1\"} 2\n"
            "demo_latency_seconds_bucket{method=\"Classify\",le=\"+Inf\"} 3\n"
            "demo_latency_seconds_sum{method=\"Classify\"} 5\n"
            "demo_latency_seconds_count{method=\"Classify\"} 3\n"
            "# HELP demo_queue_depth Queue depth.\n"
            "# TYPE demo_queue_depth gauge\n"
            "demo_queue_depth -1.5\n"
            "# HELP demo_unused Never set.\n"
            "# TYPE demo_unused gauge\n");
}

TEST(SerializeTextTest, UnlabelledHistogramHasOnlyLe) {
  Registry registry;
  auto hist = registry.AddHistogram("demo_batch_size", "Batch.", {}, {});
  ASSERT_THAT(hist, IsOk());
  (*hist)->Get().Observe(3);
  EXPECT_EQ(SerializeText(registry),
            "# HELP demo_batch_size Batch.\n# TYPE demo_batch_size histogram\n"
            "demo_batch_size_bucket{le=\"+Inf\"} 1\n"
            "demo_batch_size_sum 3\ndemo_batch_size_count 1\n");
}

// Runs `promtool check metrics` on `text`; returns its exit status and output.
int RunPromtool(const std::string& text, std::string* output) {
  char path[] = "/tmp/provp_metrics_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return -1;
  close(fd);
  std::ofstream(path, std::ios::binary) << text;
  const std::string cmd = std::string(PROVP_PROMTOOL) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    std::remove(path);
    return -1;
  }
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = pclose(pipe);
  std::remove(path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SerializeTextTest, PassesPromtoolCheckMetrics) {
  ASSERT_EQ(access(PROVP_PROMTOOL, X_OK), 0)
      << PROVP_PROMTOOL << " is missing: install the Debian package 'prometheus'";
  Registry registry;
  auto rpc = registry.AddCounter("grpc_server_handled_total", "RPCs completed.",
                                 {"grpc_service", "grpc_method", "grpc_type", "grpc_code"});
  auto latency = registry.AddHistogram("provp_request_duration_seconds", "Request latency.",
                                       {"method", "prompt_set"},
                                       {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  auto memory = registry.AddGauge("provp_gpu_memory_total_bytes", "Device memory.", {"gpu"});
  auto info = registry.AddGauge("provp_build_info", "Build info.", {"version", "libtorch"});
  auto odd = registry.AddGauge("provp_odd_values", "Help with \\ and\nnewline.", {"v"});
  auto unused = registry.AddCounter("provp_requests_rejected_total", "Rejections.", {"reason"});
  ASSERT_THAT(rpc, IsOk());
  ASSERT_THAT(latency, IsOk());
  ASSERT_THAT(memory, IsOk());
  ASSERT_THAT(info, IsOk());
  ASSERT_THAT(odd, IsOk());
  ASSERT_THAT(unused, IsOk());
  (*rpc)->WithLabels({"provp.v1.Inference", "Classify", "unary", "OK"}).Increment(12);
  for (double v : {0.001, 0.02, 0.3, 7.0, 30.0}) {
    (*latency)->WithLabels({"Classify", "default"}).Observe(v);
  }
  (*memory)->WithLabels({"0"}).SetCallback([] { return 80e9; });
  (*info)->WithLabels({"0.1.0", "1.13.1"}).Set(1);
  (*odd)->WithLabels({"quote\" back\\ nl\n ünï"}).Set(std::numeric_limits<double>::infinity());
  (*odd)->WithLabels({"nan"}).Set(std::numeric_limits<double>::quiet_NaN());
  (*odd)->WithLabels({"neg"}).Set(-std::numeric_limits<double>::infinity());
  (*odd)->WithLabels({"tiny"}).Set(1.5e-300);

  const std::string text = SerializeText(registry);
  std::string output;
  EXPECT_EQ(RunPromtool(text, &output), 0) << output << "\n--- input ---\n" << text;
  EXPECT_EQ(output, "");

  // The check must be able to fail: a counter without _total is flagged.
  std::string bad_output;
  EXPECT_NE(RunPromtool("# HELP x_ms h\n# TYPE x_ms counter\nx_ms 1\n", &bad_output), 0);
}

}  // namespace
}  // namespace provp::metrics
