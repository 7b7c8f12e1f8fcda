// What every RPC adapter shares: RpcEnv (the logger, API keys, metrics and
// drain flag each call needs), and Rpc, the per-call wrapper that assigns a
// request id (returned as `x-request-id` initial metadata), authenticates
// the API key against the method's scope, and on Finish records metrics,
// logs one line and converts the status at the edge (status_conversion.h).
// Rpc is used by one handler thread; RpcEnv's members are thread-safe.
#pragma once

#include <atomic>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/auth.h"
#include "server/state/logging.h"
#include "server/state/server_metrics.h"

namespace provp::server {

// Owned by the Server; outlives every call.
struct RpcEnv {
  Logger& logger;
  const ApiKeys& keys;
  ServerMetrics& metrics;
  // Set on SIGTERM: new work is refused with UNAVAILABLE.
  const std::atomic<bool>& draining;
};

class Rpc {
 public:
  Rpc(const RpcEnv& env, grpc::ServerContext* ctx, const char* service, const char* method,
      const char* type, Scope scope);

  // OK when the caller may proceed (authenticated, scope, not draining).
  const absl::Status& admission() const { return admission_; }
  const std::string& request_id() const { return request_id_; }
  const Principal& principal() const { return principal_; }
  grpc::ServerContext* context() const { return ctx_; }
  // The client's deadline (InfiniteFuture when none).
  absl::Time deadline() const;
  // Polled by blocking calls: the client went away.
  bool cancelled() const { return ctx_->IsCancelled(); }

  // Records, logs and converts the result. Call exactly once.
  grpc::Status Finish(const absl::Status& status, const LogFields& extra = {});

 private:
  const RpcEnv& env_;
  grpc::ServerContext* ctx_;
  std::string service_;
  std::string method_;
  const char* type_;
  absl::Time start_;
  std::string request_id_;
  Principal principal_;
  absl::Status admission_;
};

// Runs `body` (returning absl::Status) for an admitted call; exceptions
// become INTERNAL, so no request can take the process down.
template <typename Fn>
grpc::Status Handle(Rpc& rpc, Fn&& body) {
  if (!rpc.admission().ok()) return rpc.Finish(rpc.admission());
  absl::Status s;
  try {
    s = body();
  } catch (const std::exception& e) {
    s = absl::InternalError(std::string("unhandled exception: ") + e.what());
  } catch (...) {
    s = absl::InternalError("unhandled exception");
  }
  return rpc.Finish(s);
}

}  // namespace provp::server
