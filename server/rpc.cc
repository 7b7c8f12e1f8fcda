// Implementation of rpc.h.
#include "server/rpc.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/state/errors.h"
#include "server/state/resource_names.h"
#include "server/status_conversion.h"

namespace provp::server {

Rpc::Rpc(const RpcEnv& env, grpc::ServerContext* ctx, const char* service, const char* method,
         const char* type, Scope scope)
    : env_(env), ctx_(ctx), service_(service), method_(method), type_(type), start_(absl::Now()) {
  const auto& md = ctx->client_metadata();
  auto rid = md.find("x-request-id");
  if (rid != md.end() && rid->second.size() <= 64) {
    std::string v(rid->second.data(), rid->second.size());
    bool printable = !v.empty();
    for (char c : v) printable &= absl::ascii_isgraph(static_cast<unsigned char>(c));
    if (printable) request_id_ = v;
  }
  if (request_id_.empty()) request_id_ = RandomHex(16);
  ctx->AddInitialMetadata("x-request-id", request_id_);
  env_.metrics.RpcStarted(service_, method_, type_);
  std::string auth;
  auto a = md.find("authorization");
  if (a != md.end()) auth.assign(a->second.data(), a->second.size());
  absl::StatusOr<Principal> p = env_.keys.Authenticate(auth, scope);
  if (!p.ok()) {
    admission_ = p.status();
  } else {
    principal_ = *p;
    if (env_.draining.load()) {
      ErrorDetail d;
      d.retry_after_ms = 1000;
      admission_ =
          MakeError(absl::StatusCode::kUnavailable, "DRAINING", "server is shutting down", d);
    }
  }
}

absl::Time Rpc::deadline() const {
  auto d = ctx_->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

grpc::Status Rpc::Finish(const absl::Status& status, const LogFields& extra) {
  double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  const char* code = CodeName(status.code());
  env_.metrics.RpcHandled(service_, method_, type_, GoCodeName(status.code()), seconds);
  LogFields fields = {{"request_id", request_id_},
                      {"method", absl::StrCat(service_, "/", method_)},
                      {"code", code},
                      {"seconds", absl::StrCat(seconds)},
                      {"principal", principal_.name}};
  if (!status.ok()) {
    fields.emplace_back("reason", ReasonOf(status));
    fields.emplace_back("error", std::string(status.message()));
  }
  fields.insert(fields.end(), extra.begin(), extra.end());
  LogLevel level = status.ok()                                    ? LogLevel::kInfo
                   : status.code() == absl::StatusCode::kInternal ? LogLevel::kError
                                                                  : LogLevel::kWarning;
  env_.logger.Log(level, "rpc", fields);
  return ToGrpcStatus(status, request_id_);
}

}  // namespace provp::server
