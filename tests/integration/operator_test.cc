// What operators expect of the server, against a real grpc::Server on
// 127.0.0.1 port 0 with the fake engine: liveness (/healthz) separate from
// readiness (/readyz), a stuck batch reported as not alive; authentication
// on by default off loopback; and max-connection-age sending GOAWAY so
// clients reconnect (what lets load balancers rebalance HTTP/2).
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "provp/v1/classification.grpc.pb.h"
#include "server/rpc.h"
#include "server/server.h"
#include "tests/integration/server_test_util.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::SolidPng;
using ::provp::testing::StatusIs;
using ::provp::testing::TempDir;
using ::testing::HasSubstr;

// HTTP status of GET path on 127.0.0.1:port (0 if no answer).
int HttpStatus(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  char buf[32] = {0};
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 12 ? std::atoi(buf + 9) : 0;
}

ServerOptions LocalOptions(const TempDir& dir) {
  ServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.data_dir = dir.path() + "/data";
  o.metrics_port = 0;
  o.metrics_bind_address = "127.0.0.1";
  o.shutdown_grace_seconds = 1;
  return o;
}

v1::ClassifyRequest OneImage() {
  v1::ClassifyRequest req;
  for (const char* n : {"red", "blue"}) req.mutable_inline_classes()->add_names(n);
  req.add_images()->set_encoded(SolidPng(250, 10, 10));
  return req;
}

TEST(LivenessTest, AStuckBatchIsNotAliveAndRecovers) {
  TempDir dir;
  ServerOptions o = LocalOptions(dir);
  o.liveness_stall_seconds = 0.5;
  o.batching.num_workers = 1;
  o.batching.max_batch_size = 1;
  engine::FakeEngineOptions fo;
  fo.encode_milliseconds = 4000;  // one model call that takes far longer than the stall limit
  auto server = Server::Create(o, std::make_unique<engine::FakeEngine>(fo));
  ASSERT_OK(server);
  ASSERT_OK((*server)->Start());
  const int http = (*server)->metrics_port();
  EXPECT_EQ(HttpStatus(http, "/healthz"), 200);
  EXPECT_EQ(HttpStatus(http, "/readyz"), 200);

  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::ClassificationService::NewStub(channel);
  // The first request occupies the only worker; the second waits behind it.
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&stub] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      v1::ClassifyResponse resp;
      EXPECT_TRUE(stub->Classify(&ctx, OneImage(), &resp).ok());
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(HttpStatus(http, "/healthz"), 503) << "queued work has not moved for 2 s";
  EXPECT_EQ(HttpStatus(http, "/readyz"), 503);
  for (auto& c : clients) c.join();
  EXPECT_EQ(HttpStatus(http, "/healthz"), 200) << "the queue drained";
  EXPECT_EQ(HttpStatus(http, "/readyz"), 200);
  (*server)->Shutdown();
}

TEST(AuthByDefaultTest, RefusesAnOpenServerOffLoopback) {
  TempDir dir;
  ServerOptions o = LocalOptions(dir);
  o.listen_address = "0.0.0.0:0";
  auto refused = Server::Create(o, std::make_unique<engine::FakeEngine>());
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(refused.status().message(), HasSubstr("--allow-unauthenticated"));
  o.allow_unauthenticated = true;
  EXPECT_OK(Server::Create(o, std::make_unique<engine::FakeEngine>()));
}

TEST(AuthByDefaultTest, LoopbackAddresses) {
  for (const char* a :
       {"127.0.0.1:50051", "127.1.2.3:0", "[::1]:50051", "localhost:9", "unix:/run/provp.sock"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a :
       {"0.0.0.0:50051", "[::]:50051", "10.0.0.5:50051", "example.com:443", ":50051"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

TEST(ConnectionAgeTest, MaxConnectionAgeSendsGoawayAndClientsReconnect) {
  TempDir dir;
  ServerOptions o = LocalOptions(dir);
  o.max_connection_age_seconds = 1;
  o.max_connection_age_grace_seconds = 1;
  auto server = Server::Create(o, std::make_unique<engine::FakeEngine>());
  ASSERT_OK(server);
  ASSERT_OK((*server)->Start());
  EXPECT_THAT((*server)->ConfigSummary(), HasSubstr("max_connection_age_seconds=1"));
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::ClassificationService::NewStub(channel);
  grpc::ClientContext first;
  v1::ClassifyResponse resp;
  ASSERT_TRUE(stub->Classify(&first, OneImage(), &resp).ok());
  EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  // Age 1 s (+10 % jitter) + 1 s grace: the server has closed the connection.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY);
  grpc::ClientContext second;
  EXPECT_TRUE(stub->Classify(&second, OneImage(), &resp).ok()) << "the client reconnects";
  (*server)->Shutdown();
}

TEST(ConnectionAgeTest, RejectsNegativeSettings) {
  TempDir dir;
  ServerOptions o = LocalOptions(dir);
  o.max_connection_age_seconds = -1;
  EXPECT_THAT(Server::Create(o, std::make_unique<engine::FakeEngine>()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o = LocalOptions(dir);
  o.keepalive_time_seconds = 0;
  EXPECT_THAT(Server::Create(o, std::make_unique<engine::FakeEngine>()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::server

namespace provp::server {
namespace {

TEST(TraceparentTest, IsLoggedWithTheRequestId) {
  TempDir dir;
  ServerOptions o = LocalOptions(dir);
  o.log_json = true;
  auto server = Server::Create(o, std::make_unique<engine::FakeEngine>());
  ASSERT_OK(server);
  ASSERT_OK((*server)->Start());
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::ClassificationService::NewStub(channel);
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ::testing::internal::CaptureStderr();
  grpc::ClientContext ctx;
  ctx.AddMetadata("traceparent", tp);
  ctx.AddMetadata("x-request-id", "trace-test-request-1");
  v1::ClassifyResponse resp;
  const bool ok = stub->Classify(&ctx, OneImage(), &resp).ok();
  grpc::ClientContext bad;
  bad.AddMetadata("traceparent", "garbage");
  bad.AddMetadata("x-request-id", "trace-test-request-2");
  (void)stub->Classify(&bad, OneImage(), &resp);
  (*server)->Shutdown();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(ok);
  std::string first, second;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("trace-test-request-1") != std::string::npos) first = line;
    if (line.find("trace-test-request-2") != std::string::npos) second = line;
  }
  EXPECT_THAT(first, HasSubstr(tp)) << log;
  EXPECT_THAT(second, ::testing::Not(HasSubstr("traceparent"))) << "malformed ones are dropped";
}

TEST(TraceparentTest, AcceptsOnlyW3cTraceContext) {
  EXPECT_TRUE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_TRUE(IsValidTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00"));
  EXPECT_FALSE(IsValidTraceparent(""));
  EXPECT_FALSE(IsValidTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  EXPECT_FALSE(IsValidTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_FALSE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"));
  EXPECT_FALSE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
  // A later version may append fields after a dash.
  EXPECT_TRUE(IsValidTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
}

}  // namespace
}  // namespace provp::server
