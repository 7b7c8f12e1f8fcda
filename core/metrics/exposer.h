// HTTP endpoint for Prometheus and orchestrator probes on its own port:
// prometheus-cpp's pull Exposer (civetweb) serves GET /metrics from the
// registered collectables (text format 0.0.4, gzip when asked); /healthz
// (liveness: 200 while the `live` callback says so, else 503) and /readyz
// (readiness: 200 while `ready` says so, else 503) are answered beside it.
// Thread-safety: requests are served on civetweb worker threads; the
// collectables and callbacks must be thread-safe. Destruction stops the
// server and waits for in-flight requests.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "absl/status/statusor.h"

namespace prometheus {
class Exposer;
}
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
  // /healthz answers 200 when this returns true, 503 otherwise. Unset means
  // "alive whenever the process serves HTTP". Runs on a worker thread.
  std::function<bool()> live;
  // /readyz likewise; unset means "ready whenever alive".
  std::function<bool()> ready;
};

class Exposer {
 public:
  // Starts serving `collectables` (each must stay alive while registered;
  // expired ones are skipped). INVALID_ARGUMENT for bad options, UNAVAILABLE
  // when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<Exposer>> Create(
      const std::vector<std::weak_ptr<prometheus::Collectable>>& collectables,
      ExposerOptions options);
  ~Exposer();
  Exposer(const Exposer&) = delete;
  Exposer& operator=(const Exposer&) = delete;

  // The bound TCP port (the real one when options.port was 0).
  int port() const { return port_; }

 private:
  explicit Exposer(ExposerOptions options);
  // civetweb's begin_request hook: answers /healthz and /readyz (returns
  // the HTTP status), leaves everything else to prometheus-cpp (returns 0).
  static int BeginRequest(mg_connection* conn);
  int AnswerProbe(mg_connection* conn, bool ready_probe, bool head) const;

  const ExposerOptions options_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace provp::metrics
