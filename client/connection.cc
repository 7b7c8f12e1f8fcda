// Implementation of connection.h.
#include "client/connection.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace provp::client {
namespace {

void FromEnv(std::string& field, const char* var) {
  if (!field.empty()) return;
  if (const char* v = std::getenv(var); v && *v) field = v;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " file ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  if (data.size() > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " file ", path, " is over 1 MiB"));
  }
  return data;
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::UNKNOWN:
      return "UNKNOWN";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::ABORTED:
      return "ABORTED";
    case grpc::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

void ApplyEnvironment(ConnectionOptions& options) {
  if (const char* v = std::getenv("PROVP_ADDRESS");
      v && *v && options.address == "127.0.0.1:50051") {
    options.address = v;
  }
  FromEnv(options.api_key, "PROVP_API_KEY");
  FromEnv(options.api_key_file, "PROVP_API_KEY_FILE");
  FromEnv(options.ca_cert, "PROVP_CA_CERT");
  FromEnv(options.client_cert, "PROVP_CLIENT_CERT");
  FromEnv(options.client_key, "PROVP_CLIENT_KEY");
  if (const char* v = std::getenv("PROVP_TLS");
      v && (std::string(v) == "1" || std::string(v) == "true")) {
    options.tls = true;
  }
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const ConnectionOptions& options) {
  std::unique_ptr<Connection> c(new Connection());
  c->options_ = options;
  c->key_ = options.api_key;
  if (c->key_.empty() && !options.api_key_file.empty()) {
    auto key = ReadSmallFile(options.api_key_file, "API key");
    if (!key.ok()) return key.status();
    c->key_ = std::string(absl::StripAsciiWhitespace(*key));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  const bool tls = options.tls || !options.ca_cert.empty() || !options.client_cert.empty();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_cert.empty()) {
      auto pem = ReadSmallFile(options.ca_cert, "CA certificate");
      if (!pem.ok()) return pem.status();
      ssl.pem_root_certs = *pem;
    }
    if (!options.client_cert.empty() || !options.client_key.empty()) {
      if (options.client_cert.empty() || options.client_key.empty()) {
        return absl::InvalidArgumentError("mutual TLS needs both --client-cert and --client-key");
      }
      auto cert = ReadSmallFile(options.client_cert, "client certificate");
      if (!cert.ok()) return cert.status();
      auto key = ReadSmallFile(options.client_key, "client key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // round_robin: when the address resolves to several servers (a headless
  // Kubernetes Service, dns:///name:port, or ipv4:a:p1,b:p2) calls spread
  // over all of them instead of riding one HTTP/2 connection. With one
  // address it behaves like the default pick_first.
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  c->channel_ = grpc::CreateCustomChannel(options.address, creds, args);
  return c;
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(bool with_deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!key_.empty()) ctx->AddMetadata("authorization", "Bearer " + key_);
  // OpenTelemetry's environment carrier: a script running inside a trace
  // passes it on (the server stores it on tuning jobs and their events).
  // Only printable ASCII can be metadata; the server drops malformed ones.
  if (const char* tp = std::getenv("TRACEPARENT"); tp && *tp && std::strlen(tp) <= 128) {
    bool printable = true;
    for (const char* c = tp; *c; ++c) printable &= *c >= 0x21 && *c <= 0x7e;
    if (printable) ctx->AddMetadata("traceparent", tp);
  }
  if (with_deadline && options_.timeout_seconds > 0) {
    ctx->set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::microseconds(static_cast<int64_t>(options_.timeout_seconds * 1e6)));
  }
  return ctx;
}

std::string DescribeStatus(const grpc::Status& status) {
  std::string out = absl::StrCat(CodeName(status.error_code()), ": ", status.error_message());
  if (status.error_code() == grpc::UNAVAILABLE && status.error_message().empty()) {
    out += "server unavailable";
  }
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::ErrorInfo info;
      if (any.UnpackTo(&info) && !info.reason().empty()) {
        absl::StrAppend(&out, " [", info.reason(), "]");
      }
      google::rpc::BadRequest bad;
      if (any.UnpackTo(&bad)) {
        for (const auto& v : bad.field_violations()) {
          absl::StrAppend(&out, " (", v.field(), ": ", v.description(), ")");
        }
      }
    }
  }
  return out;
}

}  // namespace provp::client
