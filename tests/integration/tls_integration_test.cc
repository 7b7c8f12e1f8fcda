// TLS and mTLS on the real server (fake engine): certificates are made at
// test time with the openssl CLI (skipped when it is missing). A client that
// trusts the CA can classify over TLS; with mTLS a client without a
// certificate is refused and one with a CA-signed certificate is served.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "gtest/gtest.h"
#include "provp/v1/classification.grpc.pb.h"
#include "server/server.h"
#include "tests/integration/server_test_util.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::SolidPng;
using ::provp::testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
    const std::string d = dir_.path();
    std::string script =
        "cd " + d +
        " && "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
        "-subj /CN=provp-test-ca && "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=localhost && "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 1 -extfile san.ext && "
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr "
        "-subj /CN=client && "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 1";
    ASSERT_EQ(system((script + " > openssl.log 2>&1").c_str()), 0);
  }

  void Start(bool mtls) {
    ServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.data_dir = dir_.path() + (mtls ? "/data-m" : "/data");
    o.tls_cert_file = dir_.path() + "/server.pem";
    o.tls_key_file = dir_.path() + "/server.key";
    if (mtls) o.tls_client_ca_file = dir_.path() + "/ca.pem";
    auto s = Server::Create(o, std::make_unique<engine::FakeEngine>());
    ASSERT_OK(s);
    server_ = std::move(*s);
    ASSERT_OK(server_->Start());
  }

  grpc::Status Classify(bool with_client_cert, int deadline_s = 10) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = Slurp(dir_.path() + "/ca.pem");
    if (with_client_cert) {
      ssl.pem_private_key = Slurp(dir_.path() + "/client.key");
      ssl.pem_cert_chain = Slurp(dir_.path() + "/client.pem");
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                             grpc::SslCredentials(ssl), args);
    auto stub = v1::ClassificationService::NewStub(channel);
    v1::ClassifyRequest req;
    req.mutable_inline_classes()->add_names("red");
    req.mutable_inline_classes()->add_names("blue");
    req.add_images()->set_encoded(SolidPng(250, 0, 0));
    v1::ClassifyResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_s));
    grpc::Status s = stub->Classify(&ctx, req, &resp);
    if (s.ok()) EXPECT_EQ(resp.results(0).prediction().labels(0).label(), "red");
    return s;
  }

  TempDir dir_;
  std::unique_ptr<Server> server_;
};

TEST_F(TlsTest, ServerTls) {
  Start(/*mtls=*/false);
  grpc::Status s = Classify(/*with_client_cert=*/false);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // A plaintext client cannot talk to the TLS port.
  auto plain = v1::ClassificationService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  v1::ClassifyResponse resp;
  EXPECT_EQ(plain->Classify(&ctx, {}, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTls) {
  Start(/*mtls=*/true);
  EXPECT_FALSE(Classify(/*with_client_cert=*/false, /*deadline_s=*/2).ok());
  grpc::Status s = Classify(/*with_client_cert=*/true);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(TlsTest, MissingKeyFileIsAStartupError) {
  ServerOptions o;
  o.data_dir = dir_.path() + "/data-x";
  o.tls_cert_file = dir_.path() + "/server.pem";
  o.tls_key_file = dir_.path() + "/nope.key";
  EXPECT_FALSE(Server::Create(o, std::make_unique<engine::FakeEngine>()).ok());
  o.tls_key_file = "";
  EXPECT_FALSE(Server::Create(o, std::make_unique<engine::FakeEngine>()).ok());
}

}  // namespace
}  // namespace provp::server
