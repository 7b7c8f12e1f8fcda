// The exposer (prometheus-cpp's pull Exposer on Debian's civetweb) over real
// HTTP on 127.0.0.1 (raw socket client): /metrics content and type from
// several collectables, /healthz and /readyz following their callbacks,
// 404/405, port 0, a busy port, that the port closes on destruction, and
// that it starts in a process with many threads of large TLS.
#include "core/metrics/exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <pthread.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/metrics/families.h"
#include "core/metrics/scrape_gauges.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::metrics {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct HttpResponse {
  int status = 0;
  std::string headers;  // raw header block, lower-cased
  std::string body;
};

// Minimal HTTP/1.1 client: one request, reads to EOF (the exposer closes).
// Returns status 0 when the connection fails.
HttpResponse Fetch(int port, const std::string& method, const std::string& path) {
  HttpResponse response;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return response;
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return response;
  }
  const std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return response;
  }
  std::string raw;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) raw.append(buffer, static_cast<size_t>(n));
  close(fd);
  const size_t split = raw.find("\r\n\r\n");
  if (split == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return response;
  response.status = std::atoi(raw.c_str() + 9);
  response.headers = raw.substr(0, split);
  for (char& c : response.headers)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  response.body = raw.substr(split + 4);
  return response;
}

ExposerOptions LocalOptions() {
  ExposerOptions options;
  options.bind_address = "127.0.0.1";
  options.port = 0;
  return options;
}

TEST(ExposerTest, ServesMetricsOnEphemeralPort) {
  MetricFamilies families;
  auto images = families.AddCounter("provp_classify_images_total", "Images.", {"prompt_set"});
  ASSERT_THAT(images, IsOk());
  (*images)->WithLabels({"pets"}).Increment(42);
  auto gauges = std::make_shared<ScrapeTimeGauges>();
  ASSERT_THAT(gauges->Add("provp_gpu_memory_total_bytes", "Total.",
                          [] {
                            return ScrapeTimeGauges::Series{{{{"gpu", "0"}}, 0.0}};
                          }),
              IsOk());
  auto exposer = Exposer::Create({families.registry(), gauges}, LocalOptions());
  ASSERT_THAT(exposer, IsOk());
  const int port = (*exposer)->port();
  EXPECT_GT(port, 0);

  HttpResponse r = Fetch(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.headers, HasSubstr("content-type: text/plain"));
  EXPECT_THAT(r.body, HasSubstr("provp_classify_images_total{prompt_set=\"pets\"} 42\n"));
  EXPECT_THAT(r.body, HasSubstr("provp_gpu_memory_total_bytes{gpu=\"0\"} 0\n"));
  EXPECT_THAT(r.body, HasSubstr(SerializeText(*families.registry())));

  // A scrape sees updates made after the exposer started.
  (*images)->WithLabels({"pets"}).Increment();
  EXPECT_THAT(Fetch(port, "GET", "/metrics").body,
              HasSubstr("provp_classify_images_total{prompt_set=\"pets\"} 43\n"));
}

TEST(ExposerTest, LivenessAndReadinessAreSeparate) {
  MetricFamilies families;
  std::atomic<bool> live{true};
  std::atomic<bool> ready{false};
  ExposerOptions options = LocalOptions();
  options.live = [&live] { return live.load(); };
  options.ready = [&ready] { return ready.load(); };
  auto exposer = Exposer::Create({families.registry()}, options);
  ASSERT_THAT(exposer, IsOk());
  const int port = (*exposer)->port();
  // Warming up or draining: alive, not ready.
  EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(Fetch(port, "GET", "/readyz").status, 503);
  ready = true;
  EXPECT_EQ(Fetch(port, "GET", "/readyz").status, 200);
  HttpResponse head = Fetch(port, "HEAD", "/readyz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  // Stuck: neither alive nor ready.
  live = false;
  EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 503);
  EXPECT_EQ(Fetch(port, "GET", "/readyz").status, 503);
}

TEST(ExposerTest, AThrowingProbeMeansNo) {
  MetricFamilies families;
  ExposerOptions options = LocalOptions();
  options.ready = []() -> bool { throw std::runtime_error("probe failed"); };
  auto exposer = Exposer::Create({families.registry()}, options);
  ASSERT_THAT(exposer, IsOk());
  EXPECT_EQ(Fetch((*exposer)->port(), "GET", "/readyz").status, 503);
  EXPECT_EQ(Fetch((*exposer)->port(), "GET", "/healthz").status, 200);
}

TEST(ExposerTest, UnsetReadinessMeansReady) {
  MetricFamilies families;
  auto exposer = Exposer::Create({families.registry()}, LocalOptions());
  ASSERT_THAT(exposer, IsOk());
  EXPECT_EQ(Fetch((*exposer)->port(), "GET", "/readyz").status, 200);
}

TEST(ExposerTest, UnknownPathsAndMethods) {
  MetricFamilies families;
  auto exposer = Exposer::Create({families.registry()}, LocalOptions());
  ASSERT_THAT(exposer, IsOk());
  const int port = (*exposer)->port();
  EXPECT_EQ(Fetch(port, "GET", "/").status, 404);
  EXPECT_EQ(Fetch(port, "GET", "/metrics/extra").status, 404);
  EXPECT_EQ(Fetch(port, "GET", "/etc/passwd").status, 404);
  EXPECT_EQ(Fetch(port, "POST", "/metrics").status, 405);
  EXPECT_EQ(Fetch(port, "POST", "/healthz").status, 405);
}

// LibTorch and OpenBLAS give every thread ~100 KiB of TLS; Debian's
// civetweb asks for 100 KiB stacks. The interposed pthread_attr_setstacksize
// is what lets the exposer start at all in such a process: creating a
// thread with a 100 KiB stack request must give at least 1 MiB.
TEST(ExposerTest, SmallStackRequestsAreRaised) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 100 * 1024), 0);
  size_t size = 0;
  pthread_attr_getstacksize(&attr, &size);
  EXPECT_GE(size, size_t{1} << 20);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, size_t{16} << 20), 0);
  pthread_attr_getstacksize(&attr, &size);
  EXPECT_EQ(size, size_t{16} << 20);
  pthread_attr_destroy(&attr);
}

TEST(ExposerTest, BusyPortIsUnavailableAndDestructionClosesPort) {
  MetricFamilies families;
  int port = 0;
  {
    auto first = Exposer::Create({families.registry()}, LocalOptions());
    ASSERT_THAT(first, IsOk());
    port = (*first)->port();
    ExposerOptions same = LocalOptions();
    same.port = port;
    auto second = Exposer::Create({families.registry()}, same);
    EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(second.status().message(), HasSubstr(std::to_string(port)));
    EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 200);
  }
  EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 0);
}

TEST(ExposerTest, RejectsBadOptions) {
  MetricFamilies families;
  ExposerOptions options = LocalOptions();
  options.port = 70000;
  EXPECT_THAT(Exposer::Create({families.registry()}, options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = LocalOptions();
  options.bind_address = "127.0.0.1,0.0.0.0";
  EXPECT_THAT(Exposer::Create({families.registry()}, options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = LocalOptions();
  options.num_threads = 0;
  EXPECT_THAT(Exposer::Create({families.registry()}, options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::metrics
