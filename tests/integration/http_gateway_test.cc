// The HTTP/JSON door (server/http_gateway.h) against a real grpc::Server on
// 127.0.0.1 port 0 with the fake engine, called by a small HTTP/1.1 client
// on plain loopback sockets: JSON classification gives the gRPC call's
// top-k, embeddings match, errors carry the service's code, reason and
// google.api HTTP status, auth is the gRPC path's (401 without a key, 200
// with one, Bearer or X-Api-Key), bodies over the message limit get 413,
// metadata (x-request-id, traceparent) is forwarded, and the RPC metrics
// count HTTP-originated calls. Label integration.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "gtest/gtest.h"
#include "provp/v1/classification.grpc.pb.h"
#include "server/http_gateway.h"
#include "server/server.h"
#include "tests/integration/server_test_util.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::Ctx;
using ::provp::testing::SolidPng;
using ::provp::testing::StatusIs;
using ::provp::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kAdmin[] = "admin-key-123456";
constexpr char kClient[] = "client-key-123456";
constexpr int64_t kMaxMessage = 1 << 20;

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Writes what it can (the server may close early, as with 413).
void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Reads one response: the headers, then Content-Length bytes of body (or up
// to EOF without one). It does not wait for the server to close: after a
// 413 the server may keep reading what the client still sends.
HttpResponse ReadResponse(int fd, bool close_fd = true) {
  std::string raw;
  char buf[65536];
  HttpResponse r;
  size_t end = std::string::npos;
  int64_t length = -1;
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) {
    raw.append(buf, static_cast<size_t>(n));
    if (end == std::string::npos && (end = raw.find("\r\n\r\n")) != std::string::npos) {
      std::vector<std::string> lines = absl::StrSplit(raw.substr(0, end), "\r\n");
      if (!lines.empty() && lines[0].size() >= 12) {
        (void)absl::SimpleAtoi(lines[0].substr(9, 3), &r.status);
      }
      for (size_t i = 1; i < lines.size(); ++i) {
        const size_t colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        r.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
            std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
      }
      auto cl = r.headers.find("content-length");
      if (cl != r.headers.end()) (void)absl::SimpleAtoi(cl->second, &length);
    }
    if (end != std::string::npos && length >= 0 &&
        raw.size() >= end + 4 + static_cast<size_t>(length)) {
      break;
    }
  }
  if (close_fd) close(fd);
  if (end == std::string::npos) return HttpResponse{};
  r.body = raw.substr(end + 4, length >= 0 ? static_cast<size_t>(length) : std::string::npos);
  return r;
}

// Sends `raw` on a thread of its own while the answer is read, so a server
// that answers before reading the whole body (413) cannot deadlock the
// test on full socket buffers.
HttpResponse HttpRaw(int port, const std::string& raw) {
  const int fd = Connect(port);
  if (fd < 0) return {};
  std::thread writer([fd, &raw] { WriteAll(fd, raw); });
  HttpResponse r = ReadResponse(fd, /*close_fd=*/false);
  shutdown(fd, SHUT_RDWR);  // ends a writer the server no longer reads from
  writer.join();
  close(fd);
  return r;
}

// One request; `headers` are full lines without CRLF.
HttpResponse Http(int port, const std::string& method, const std::string& path,
                  const std::string& body = "", const std::vector<std::string>& headers = {}) {
  const int fd = Connect(port);
  if (fd < 0) return {};
  std::string req = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const std::string& h : headers) absl::StrAppend(&req, h, "\r\n");
  if (method == "POST") absl::StrAppend(&req, "Content-Length: ", body.size(), "\r\n");
  absl::StrAppend(&req, "Connection: close\r\n\r\n", body);
  WriteAll(fd, req);
  return ReadResponse(fd);
}

template <typename M>
M FromJson(const std::string& json) {
  M m;
  const auto s = google::protobuf::util::JsonStringToMessage(json, &m);
  EXPECT_TRUE(s.ok()) << s.message() << " in: " << json;
  return m;
}

template <typename M>
std::string ToJson(const M& m) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &json).ok());
  return json;
}

// The ErrorInfo reason of an error body.
std::string ReasonOfBody(const std::string& body) {
  return provp::testing::ReasonOf(FromJson<google::rpc::Status>(body));
}

std::string Bearer(const std::string& key) { return "Authorization: Bearer " + key; }

class HttpGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_path_ = dir_.path() + "/keys";
    FILE* f = fopen(keys_path_.c_str(), "w");
    fprintf(f, "admin %s ops\nclassify %s app\n", kAdmin, kClient);
    fclose(f);
    auto s = Server::Create(Options(), std::make_unique<engine::FakeEngine>());
    ASSERT_OK(s);
    server_ = std::move(*s);
    ASSERT_OK(server_->Start());
    http_ = server_->http_port();
    ASSERT_GT(http_, 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    classify_ = v1::ClassificationService::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  ServerOptions Options() {
    ServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.data_dir = dir_.path() + "/data";
    o.api_keys_file = keys_path_;
    o.limits.max_message_bytes = kMaxMessage;
    o.limits.max_images_per_request = 8;
    o.metrics_port = 0;
    o.metrics_bind_address = "127.0.0.1";
    o.http_port = 0;
    o.http_bind_address = "127.0.0.1";
    o.http_threads = 4;
    o.shutdown_grace_seconds = 1;
    return o;
  }

  static v1::ClassifyRequest ColourRequest() {
    v1::ClassifyRequest req;
    for (const char* n : {"red", "green", "blue"}) req.mutable_inline_classes()->add_names(n);
    req.add_images()->set_encoded(SolidPng(250, 10, 10));
    req.add_images()->set_encoded(SolidPng(10, 10, 250, 16, 1));
    req.add_images()->set_encoded("not an image");
    req.set_top_k(2);
    return req;
  }

  std::string Metrics() {
    const int fd = Connect(server_->metrics_port());
    WriteAll(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return ReadResponse(fd).body;
  }

  // The value of one exposition line `name{labels} value` (0 if absent).
  static double Sample(const std::string& body, const std::string& name,
                       const std::vector<std::string>& label_parts) {
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name + "{", 0) != 0) continue;
      bool all = true;
      for (const std::string& p : label_parts) all &= line.find(p) != std::string::npos;
      if (all) return std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    }
    return 0;
  }

  TempDir dir_;
  std::string keys_path_;
  std::unique_ptr<Server> server_;
  int http_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ClassificationService::Stub> classify_;
};

TEST_F(HttpGatewayTest, ClassifyWithBase64ImagesGivesTheGrpcTopK) {
  const v1::ClassifyRequest req = ColourRequest();
  auto ctx = Ctx(kClient);
  v1::ClassifyResponse via_grpc;
  ASSERT_TRUE(classify_->Classify(ctx.get(), req, &via_grpc).ok());

  // The JSON a curl user writes: bytes are base64 in protobuf's mapping.
  const std::string json = ToJson(req);
  ASSERT_THAT(json, HasSubstr(absl::Base64Escape(req.images(0).encoded())));
  const HttpResponse r = Http(http_, "POST", "/v1/classify", json, {Bearer(kClient)});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.count("x-request-id"), 1u);
  const auto via_http = FromJson<v1::ClassifyResponse>(r.body);
  ASSERT_EQ(via_http.results_size(), 3);
  for (int i = 0; i < 2; ++i) {
    const auto& a = via_grpc.results(i).prediction();
    const auto& b = via_http.results(i).prediction();
    ASSERT_EQ(a.labels_size(), 2);
    ASSERT_EQ(b.labels_size(), a.labels_size()) << r.body;
    for (int k = 0; k < a.labels_size(); ++k) {
      EXPECT_EQ(b.labels(k).label(), a.labels(k).label());
      EXPECT_EQ(b.labels(k).class_index(), a.labels(k).class_index());
      EXPECT_FLOAT_EQ(b.labels(k).score(), a.labels(k).score());
    }
  }
  EXPECT_EQ(via_http.results(0).prediction().labels(0).label(), "red");
  EXPECT_EQ(via_http.results(1).prediction().labels(0).label(), "blue");
  // A per-image error keeps its google.rpc.Status, details included.
  EXPECT_EQ(provp::testing::ReasonOf(via_http.results(2).error()), "IMAGE_DECODE_FAILED");
  EXPECT_THAT(r.body, HasSubstr("type.googleapis.com/google.rpc.ErrorInfo"));
  EXPECT_THAT(r.body, HasSubstr("\"class_index\"")) << "field names as in the .proto";
}

TEST_F(HttpGatewayTest, EmbeddingsServerInfoAndHealthMatchGrpc) {
  v1::EmbedTextsRequest texts;
  texts.add_texts("a red thing");
  texts.add_texts("a blue thing");
  v1::EmbedTextsResponse grpc_texts;
  auto c1 = Ctx(kClient);
  ASSERT_TRUE(classify_->EmbedTexts(c1.get(), texts, &grpc_texts).ok());
  HttpResponse r = Http(http_, "POST", "/v1/embed-texts", R"({"texts": ["a red thing",
      "a blue thing"]})",
                        {Bearer(kClient)});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto http_texts = FromJson<v1::EmbedTextsResponse>(r.body);
  ASSERT_EQ(http_texts.embeddings_size(), 2);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(http_texts.embeddings(i).values_size(), grpc_texts.embeddings(i).values_size());
    for (int d = 0; d < grpc_texts.embeddings(i).values_size(); ++d) {
      EXPECT_FLOAT_EQ(http_texts.embeddings(i).values(d), grpc_texts.embeddings(i).values(d));
    }
  }

  v1::EmbedImagesRequest images;
  images.add_images()->set_encoded(SolidPng(20, 200, 20));
  v1::EmbedImagesResponse grpc_images;
  auto c2 = Ctx(kClient);
  ASSERT_TRUE(classify_->EmbedImages(c2.get(), images, &grpc_images).ok());
  r = Http(http_, "POST", "/v1/embed-images", ToJson(images),
           {"X-Api-Key: " + std::string(kClient)});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto http_images = FromJson<v1::EmbedImagesResponse>(r.body);
  ASSERT_EQ(http_images.embeddings_size(), 1);
  EXPECT_EQ(http_images.dimension(), grpc_images.dimension());
  EXPECT_FLOAT_EQ(http_images.embeddings(0).values(3), grpc_images.embeddings(0).values(3));

  r = Http(http_, "GET", "/v1/server-info", "", {Bearer(kClient)});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto info = FromJson<v1::ServerInfo>(r.body);
  EXPECT_EQ(info.max_message_bytes(), kMaxMessage);
  EXPECT_EQ(info.max_images_per_request(), 8);

  // Health needs no key, as on gRPC; unknown services are 404.
  r = Http(http_, "GET", "/v1/health");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(FromJson<grpc::health::v1::HealthCheckResponse>(r.body).status(),
            grpc::health::v1::HealthCheckResponse::SERVING);
  r = Http(http_, "GET", "/v1/health?service=provp.v1.TuningService");
  EXPECT_EQ(r.status, 200) << r.body;
  r = Http(http_, "GET", "/v1/health?service=no.such.Service");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(FromJson<google::rpc::Status>(r.body).code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(HttpGatewayTest, BadJsonIs400WithItsReason) {
  HttpResponse r = Http(http_, "POST", "/v1/classify", "{not json", {Bearer(kClient)});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ReasonOfBody(r.body), "INVALID_JSON");
  const auto status = FromJson<google::rpc::Status>(r.body);
  EXPECT_EQ(status.code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.message(), HasSubstr("provp.v1.ClassifyRequest"));

  r = Http(http_, "POST", "/v1/classify", R"({"imagez": []})", {Bearer(kClient)});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ReasonOfBody(r.body), "INVALID_JSON");
  EXPECT_THAT(r.body, HasSubstr("imagez")) << "a misspelt field is named";

  r = Http(http_, "POST", "/v1/classify", R"({"images": [{"encoded": "***"}]})", {Bearer(kClient)});
  EXPECT_EQ(r.status, 400) << "bytes must be base64: " << r.body;

  r = Http(http_, "POST", "/v1/classify", "", {Bearer(kClient)});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ReasonOfBody(r.body), "INVALID_JSON");

  // Valid JSON, invalid request: the service's own validation and reason.
  r = Http(http_, "POST", "/v1/classify", R"({"inlineClasses": {"names": ["a"]}})",
           {Bearer(kClient)});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(ReasonOfBody(r.body), "NO_IMAGES");
  EXPECT_FALSE(r.headers["x-request-id"].empty()) << "errors name the request too";

  r = Http(http_, "GET", "/v1/classify", "", {Bearer(kClient)});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "POST");
  r = Http(http_, "POST", "/v1/nothing-here", "{}", {Bearer(kClient)});
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("/v1/classify"));
  r = Http(http_, "POST", "/v1/classify", "{}", {"Authorization: Bearer caf\xc3\xa9-key-1234"});
  EXPECT_EQ(r.status, 400) << "metadata must be ASCII";
  EXPECT_EQ(ReasonOfBody(r.body), "INVALID_HEADER");
}

TEST_F(HttpGatewayTest, AuthIsTheGrpcPaths) {
  const std::string body = ToJson(ColourRequest());
  HttpResponse r = Http(http_, "POST", "/v1/classify", body);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(ReasonOfBody(r.body), "MISSING_CREDENTIALS");
  r = Http(http_, "POST", "/v1/classify", body, {Bearer("wrong-key-1234567")});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(ReasonOfBody(r.body), "INVALID_API_KEY");
  r = Http(http_, "GET", "/v1/server-info");
  EXPECT_EQ(r.status, 401);
  for (const std::string& header :
       {Bearer(kClient), Bearer(kAdmin), "X-Api-Key: " + std::string(kClient)}) {
    r = Http(http_, "POST", "/v1/classify", body, {header});
    EXPECT_EQ(r.status, 200) << header << ": " << r.body;
  }
}

TEST_F(HttpGatewayTest, BodiesOverTheMessageLimitAreRefused) {
  // Declared too large: refused before the body is read.
  HttpResponse r = HttpRaw(
      http_, absl::StrCat("POST /v1/classify HTTP/1.1\r\nHost: x\r\n", Bearer(kClient),
                          "\r\nContent-Length: ", kMaxMessage + 1, "\r\n\r\n{\"images\": ["));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(ReasonOfBody(r.body), "REQUEST_TOO_LARGE");
  EXPECT_EQ(FromJson<google::rpc::Status>(r.body).code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Chunked, so no length is declared: refused once it passes the limit.
  std::string chunked = absl::StrCat("POST /v1/classify HTTP/1.1\r\nHost: x\r\n", Bearer(kClient),
                                     "\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string piece(64 << 10, ' ');
  for (int i = 0; i < 20; ++i)
    absl::StrAppend(&chunked, absl::Hex(piece.size()), "\r\n", piece, "\r\n");
  absl::StrAppend(&chunked, "0\r\n\r\n");
  r = HttpRaw(http_, chunked);
  EXPECT_EQ(r.status, 413) << r.body;

  // Just under the limit reaches the service (and its own checks).
  std::string padded = R"({"images": [], "requestId": ")";
  padded += std::string(kMaxMessage - padded.size() - 2 - 100, 'x');
  padded += "\"}";
  r = Http(http_, "POST", "/v1/classify", padded, {Bearer(kClient)});
  EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
  EXPECT_NE(ReasonOfBody(r.body), "REQUEST_TOO_LARGE");
}

TEST_F(HttpGatewayTest, RpcMetricsCountHttpOriginatedCalls) {
  const std::string before = Metrics();
  const std::vector<std::string> classify_ok = {"grpc_method=\"Classify\"", "grpc_code=\"OK\""};
  const std::vector<std::string> classify_unauth = {"grpc_method=\"Classify\"",
                                                    "grpc_code=\"Unauthenticated\""};
  const double ok0 = Sample(before, "grpc_server_handled_total", classify_ok);
  const double unauth0 = Sample(before, "grpc_server_handled_total", classify_unauth);
  EXPECT_EQ(Sample(before, "provp_http_requests_total", {"route=\"classify\"", "code=\"200\""}), 0);
  const std::string body = ToJson(ColourRequest());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Http(http_, "POST", "/v1/classify", body, {Bearer(kClient)}).status, 200);
  }
  ASSERT_EQ(Http(http_, "POST", "/v1/classify", body).status, 401);
  ASSERT_EQ(Http(http_, "POST", "/v1/classify", "[", {Bearer(kClient)}).status, 400);
  ASSERT_EQ(Http(http_, "GET", "/nope").status, 404);
  const std::string after = Metrics();
  EXPECT_EQ(Sample(after, "grpc_server_handled_total", classify_ok), ok0 + 3);
  EXPECT_EQ(Sample(after, "grpc_server_handled_total", classify_unauth), unauth0 + 1);
  EXPECT_EQ(Sample(after, "provp_http_requests_total", {"route=\"classify\"", "code=\"200\""}), 3);
  EXPECT_EQ(Sample(after, "provp_http_requests_total", {"route=\"classify\"", "code=\"401\""}), 1);
  EXPECT_EQ(Sample(after, "provp_http_requests_total", {"route=\"classify\"", "code=\"400\""}), 1)
      << "refused before gRPC, still counted here";
  EXPECT_EQ(Sample(after, "provp_http_requests_total", {"route=\"other\"", "code=\"404\""}), 1);
  EXPECT_GE(Sample(after, "provp_classify_images_total", {"prompt_set=\"zero_shot\""}), 6);
}

TEST_F(HttpGatewayTest, RequestIdAndTraceparentAreForwarded) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ::testing::internal::CaptureStderr();
  const HttpResponse r =
      Http(http_, "POST", "/v1/classify", ToJson(ColourRequest()),
           {Bearer(kClient), "X-Request-Id: http-door-request-1", "traceparent: " + tp});
  server_->Shutdown();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("x-request-id"), "http-door-request-1");
  std::string line;
  std::istringstream lines(log);
  for (std::string l; std::getline(lines, l);) {
    if (l.find("http-door-request-1") != std::string::npos) line = l;
  }
  EXPECT_THAT(line, HasSubstr("Classify")) << log;
  EXPECT_THAT(line, HasSubstr(tp));
  EXPECT_THAT(line, HasSubstr("principal=app")) << "the key's name, as on gRPC";
}

TEST_F(HttpGatewayTest, CorsOnlyWhenAnOriginIsConfigured) {
  HttpResponse r = Http(http_, "GET", "/v1/health");
  EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u);
  // No preflight is approved either (civetweb alone would allow any origin).
  r = Http(http_, "OPTIONS", "/v1/classify", "",
           {"Origin: https://evil.example", "Access-Control-Request-Method: POST"});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.count("access-control-allow-origin"), 0u);
  server_->Shutdown();
  ServerOptions o = Options();
  o.http_allow_origin = "https://app.example";
  auto s = Server::Create(o, std::make_unique<engine::FakeEngine>());
  ASSERT_OK(s);
  server_ = std::move(*s);
  ASSERT_OK(server_->Start());
  r = Http(server_->http_port(), "OPTIONS", "/v1/classify", "",
           {"Origin: https://app.example", "Access-Control-Request-Method: POST"});
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.headers["access-control-allow-origin"], "https://app.example");
  EXPECT_THAT(r.headers["access-control-allow-headers"], HasSubstr("Authorization"));
  r = Http(server_->http_port(), "POST", "/v1/classify", ToJson(ColourRequest()),
           {Bearer(kClient), "Origin: https://app.example"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["access-control-allow-origin"], "https://app.example");
  EXPECT_THAT(server_->ConfigSummary(), HasSubstr("http_allow_origin=https://app.example"));
}

TEST(HttpGatewayOptionsTest, AnOpenDoorOffLoopbackNeedsKeysOrConsent) {
  TempDir dir;
  ServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.data_dir = dir.path() + "/data";
  o.http_port = 0;
  o.http_bind_address = "0.0.0.0";
  auto refused = Server::Create(o, std::make_unique<engine::FakeEngine>());
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(refused.status().message(), HasSubstr("--http-bind"));
  o.http_bind_address = "::1";
  EXPECT_OK(Server::Create(o, std::make_unique<engine::FakeEngine>()));
  o.http_bind_address = "0.0.0.0";
  o.allow_unauthenticated = true;
  EXPECT_OK(Server::Create(o, std::make_unique<engine::FakeEngine>()));
  o.http_port = 70000;
  EXPECT_THAT(Server::Create(o, std::make_unique<engine::FakeEngine>()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(HttpGatewayTest, APortInUseFailsStartWithTheReason) {
  ServerOptions o = Options();
  o.data_dir = dir_.path() + "/second";
  o.http_port = http_;  // the first server's
  auto second = Server::Create(o, std::make_unique<engine::FakeEngine>());
  ASSERT_OK(second);
  const absl::Status started = (*second)->Start();
  EXPECT_THAT(started, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(started.message(), HasSubstr(absl::StrCat("127.0.0.1:", http_)));
  (*second)->Shutdown();
  EXPECT_EQ(Http(http_, "GET", "/v1/health").status, 200) << "the first one still serves";
}

TEST(HttpGatewayOptionsTest, GoogleApiStatusMapping) {
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::OK), 200);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::FAILED_PRECONDITION), 400);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::ALREADY_EXISTS), 409);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::CANCELLED), 499);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNIMPLEMENTED), 501);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::INTERNAL), 500);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::DATA_LOSS), 500);
}

}  // namespace
}  // namespace provp::server
