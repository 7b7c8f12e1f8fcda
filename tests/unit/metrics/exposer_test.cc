// The civetweb exposer over real HTTP on 127.0.0.1 (raw socket client):
// /metrics content and type, /healthz, /readyz following the callback,
// 404/405, port 0, a busy port, and that the port closes on destruction.
#include "core/metrics/exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "core/metrics/text_format.h"
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
  Registry registry;
  auto images = registry.AddCounter("provp_classify_images_total", "Images.", {"prompt_set"});
  ASSERT_THAT(images, IsOk());
  (*images)->WithLabels({"pets"}).Increment(42);
  auto exposer = Exposer::Create(&registry, LocalOptions());
  ASSERT_THAT(exposer, IsOk());
  const int port = (*exposer)->port();
  EXPECT_GT(port, 0);

  HttpResponse r = Fetch(port, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.headers, HasSubstr("content-type: text/plain; version=0.0.4"));
  EXPECT_THAT(r.body, HasSubstr("provp_classify_images_total{prompt_set=\"pets\"} 42\n"));
  EXPECT_EQ(r.body, SerializeText(registry));

  // A scrape sees updates made after the exposer started.
  (*images)->WithLabels({"pets"}).Increment();
  EXPECT_THAT(Fetch(port, "GET", "/metrics").body,
              HasSubstr("provp_classify_images_total{prompt_set=\"pets\"} 43\n"));

  HttpResponse head = Fetch(port, "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST(ExposerTest, HealthAndReadiness) {
  Registry registry;
  std::atomic<bool> ready{false};
  ExposerOptions options = LocalOptions();
  options.ready = [&ready] { return ready.load(); };
  auto exposer = Exposer::Create(&registry, options);
  ASSERT_THAT(exposer, IsOk());
  const int port = (*exposer)->port();
  EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(Fetch(port, "GET", "/readyz").status, 503);
  ready = true;
  EXPECT_EQ(Fetch(port, "GET", "/readyz").status, 200);
  ready = false;
  EXPECT_EQ(Fetch(port, "GET", "/readyz").status, 503);
  EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 200);
}

TEST(ExposerTest, UnsetReadinessMeansReady) {
  Registry registry;
  auto exposer = Exposer::Create(&registry, LocalOptions());
  ASSERT_THAT(exposer, IsOk());
  EXPECT_EQ(Fetch((*exposer)->port(), "GET", "/readyz").status, 200);
}

TEST(ExposerTest, UnknownPathsAndMethods) {
  Registry registry;
  auto exposer = Exposer::Create(&registry, LocalOptions());
  ASSERT_THAT(exposer, IsOk());
  const int port = (*exposer)->port();
  EXPECT_EQ(Fetch(port, "GET", "/").status, 404);
  EXPECT_EQ(Fetch(port, "GET", "/metrics/extra").status, 404);
  EXPECT_EQ(Fetch(port, "GET", "/etc/passwd").status, 404);
  EXPECT_EQ(Fetch(port, "POST", "/metrics").status, 405);
}

TEST(ExposerTest, BusyPortIsUnavailableAndDestructionClosesPort) {
  Registry registry;
  int port = 0;
  {
    auto first = Exposer::Create(&registry, LocalOptions());
    ASSERT_THAT(first, IsOk());
    port = (*first)->port();
    ExposerOptions same = LocalOptions();
    same.port = port;
    auto second = Exposer::Create(&registry, same);
    EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(second.status().message(), HasSubstr(std::to_string(port)));
    EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 200);
  }
  EXPECT_EQ(Fetch(port, "GET", "/healthz").status, 0);
}

TEST(ExposerTest, RejectsBadOptions) {
  Registry registry;
  ExposerOptions options = LocalOptions();
  options.port = 70000;
  EXPECT_THAT(Exposer::Create(&registry, options), StatusIs(absl::StatusCode::kInvalidArgument));
  options = LocalOptions();
  options.bind_address = "127.0.0.1,0.0.0.0";
  EXPECT_THAT(Exposer::Create(&registry, options), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Exposer::Create(nullptr, LocalOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::metrics
