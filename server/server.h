// The provp gRPC server: wires the store, engine, batcher, caches, job
// runner and services together, adds grpc.health.v1 (SERVING only once the
// engine is warmed; NOT_SERVING while draining) and server reflection, and
// owns the optional /metrics endpoint and the optional HTTP/JSON door
// (server/http_gateway.h). Lifecycle: Create -> Start -> Wait
// (or Shutdown from another thread, e.g. the signal handler).
// Thread-safe: Shutdown may be called from any thread, once or more.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/engine/engine.h"
#include "server/server_options.h"

namespace provp::server {

// True for listen addresses only this host can reach: 127.0.0.0/8, ::1,
// localhost and unix sockets ("127.0.0.1:50051", "[::1]:0", "unix:/run/s").
bool IsLoopbackAddress(const std::string& listen_address);

class Server {
 public:
  // Opens (creates) the data dir and database, reads keys and TLS files.
  // Errors name the offending file or option.
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options,
                                                        std::unique_ptr<engine::Engine> engine);
  ~Server();

  // Binds the port, warms the engine, reloads prompt sets, recovers jobs and
  // reports SERVING. Writes options.metrics_port_file once the metrics port
  // is bound (metrics on only), options.http_port_file once the HTTP door is
  // (likewise), and options.port_file last, once SERVING.
  absl::Status Start();
  // Blocks until Shutdown has completed.
  void Wait();
  // Drain: NOT_SERVING, refuse new work, stop the running job at a step
  // boundary (it resumes from its last epoch checkpoint on the next start),
  // finish in-flight RPCs (up to the grace period), stop.
  void Shutdown();

  int port() const;
  int metrics_port() const;
  // The HTTP/JSON door's bound port; -1 when it is off.
  int http_port() const;
  // One line per option, secrets omitted, for the start-up log.
  std::string ConfigSummary() const;

 private:
  Server();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace provp::server
