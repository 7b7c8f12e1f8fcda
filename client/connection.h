// How the CLI reaches a provp server: address, API key and TLS settings from
// flags or environment variables, one channel per invocation, and a client
// context carrying the key and a deadline. Also the one place that turns a
// failed call into the one-line reason the CLI prints. No LibTorch here.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace provp::client {

struct ConnectionOptions {
  std::string address = "127.0.0.1:50051";  // PROVP_ADDRESS
  std::string api_key;                      // PROVP_API_KEY
  std::string api_key_file;                 // PROVP_API_KEY_FILE
  bool tls = false;                         // PROVP_TLS=1
  std::string ca_cert;                      // PROVP_CA_CERT (PEM file)
  std::string client_cert;                  // PROVP_CLIENT_CERT (PEM, for mTLS)
  std::string client_key;                   // PROVP_CLIENT_KEY (PEM, for mTLS)
  std::string tls_server_name;              // override of the name checked in the certificate
  double timeout_seconds = 30.0;            // per unary call; streams have none
};

// Fills unset fields from the PROVP_* environment variables.
void ApplyEnvironment(ConnectionOptions& options);

class Connection {
 public:
  // Reads key and certificate files; fails with a reason naming the file.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const ConnectionOptions& options);

  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // A context with the bearer key and, when `with_deadline`, the unary
  // deadline. Streams that may last long (watch, uploads) pass false.
  std::unique_ptr<grpc::ClientContext> NewContext(bool with_deadline = true) const;

 private:
  Connection() = default;
  ConnectionOptions options_;
  std::string key_;
  std::shared_ptr<grpc::Channel> channel_;
};

// "NOT_FOUND: prompt set promptSets/x does not exist [PROMPT_SET_NOT_FOUND]":
// the status code, message and ErrorInfo reason from the status details.
std::string DescribeStatus(const grpc::Status& status);

}  // namespace provp::client
