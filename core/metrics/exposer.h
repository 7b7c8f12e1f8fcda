// HTTP endpoint for Prometheus and orchestrator probes, on its own port
// (civetweb): GET /metrics (text format 0.0.4), /healthz (200 while the
// process serves HTTP) and /readyz (200 only while the readiness callback
// says so, else 503). Thread-safety: requests are served on civetweb worker
// threads; the Registry and the callback must be thread-safe. Destruction
// stops the server and waits for in-flight requests.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/metrics/registry.h"

struct mg_context;
struct mg_connection;

namespace provp::metrics {

struct ExposerOptions {
  // Address to bind: "0.0.0.0" (all IPv4), "127.0.0.1", or an IPv6 literal
  // such as "::1".
  std::string bind_address = "0.0.0.0";
  // TCP port; 0 picks a free one (read it back with Exposer::port()).
  int port = 9090;
  // civetweb worker threads; scrapes are rare, two keep probes answered
  // while a scrape is being rendered.
  int num_threads = 2;
  // /readyz answers 200 when this returns true and 503 otherwise. Unset
  // means "ready whenever the process serves HTTP". Runs on a worker thread.
  std::function<bool()> ready;
};

class Exposer {
 public:
  // Starts serving `registry`, which must outlive the Exposer. Fails with
  // INVALID_ARGUMENT for bad options and UNAVAILABLE when the port cannot be
  // bound (the message carries civetweb's reason).
  static absl::StatusOr<std::unique_ptr<Exposer>> Create(const Registry* registry,
                                                         ExposerOptions options);
  ~Exposer();
  Exposer(const Exposer&) = delete;
  Exposer& operator=(const Exposer&) = delete;

  // The bound TCP port (the real one when options.port was 0).
  int port() const { return port_; }

 private:
  Exposer(const Registry* registry, ExposerOptions options);
  static int HandleRequest(mg_connection* conn, void* self);
  int Handle(mg_connection* conn);

  const Registry* const registry_;
  const ExposerOptions options_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace provp::metrics
