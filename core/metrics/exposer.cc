// prometheus::Exposer plus the two probe endpoints (see exposer.h). The
// probes are answered in civetweb's begin_request hook because
// prometheus-cpp's Exposer only registers collectables on URIs; the hook
// finds its Exposer by the port the request came in on. The worker-stack
// fix Debian's civetweb needs is in civetweb_support.cc.
#include "core/metrics/exposer.h"

#include <civetweb.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <CivetServer.h>
#include <prometheus/exposer.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/metrics/civetweb_support.h"

namespace provp::metrics {
namespace {

// Port -> Exposer answering on it, for the begin_request hook.
std::mutex& RoutesMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<int, const Exposer*>& Routes() {
  static auto* routes = new std::map<int, const Exposer*>;
  return *routes;
}

// Keeps civetweb from printing its own log lines to stderr; bind errors
// reach the caller through the exception prometheus-cpp throws.
int SilentLog(const mg_connection*, const char*) { return 1; }

void Reply(mg_connection* conn, int code, absl::string_view reason, absl::string_view body,
           bool head) {
  const std::string header = absl::StrCat(
      "HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: text/plain; charset=utf-8\r\n",
      "Content-Length: ", body.size(), "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  mg_write(conn, header.data(), header.size());
  if (!head && !body.empty()) mg_write(conn, body.data(), body.size());
}

bool Ask(const std::function<bool()>& probe) {
  if (!probe) return true;
  try {
    return probe();
  } catch (...) {
    return false;  // a failing probe means "no", never a crash
  }
}

}  // namespace

Exposer::Exposer(ExposerOptions options) : options_(std::move(options)) {}

Exposer::~Exposer() {
  {
    std::lock_guard<std::mutex> lock(RoutesMutex());
    auto it = Routes().find(port_);
    if (it != Routes().end() && it->second == this) Routes().erase(it);
  }
  if (!exposer_) return;
  // Stopping joins every worker, so no handler runs on a dead `this`. While
  // it waits, keep poking the listener so the accept loop wakes up.
  std::atomic<bool> stopped{false};
  std::thread waker([this, &stopped] {
    while (!stopped.load()) {
      PokeListener(options_.bind_address, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped.store(true);
  waker.join();
}

absl::StatusOr<std::unique_ptr<Exposer>> Exposer::Create(
    const std::vector<std::weak_ptr<prometheus::Collectable>>& collectables,
    ExposerOptions options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics exposer: port must be in [0, 65535], got ", options.port));
  }
  if (options.num_threads < 1 || options.num_threads > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics exposer: num_threads must be in [1, 64], got ", options.num_threads));
  }
  if (options.bind_address.empty() ||
      options.bind_address.find_first_of(" ,[]") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics exposer: bad bind address '", options.bind_address, "'"));
  }
  RequireCivetwebWorkerStacks();  // prometheus-cpp's Exposer runs on Debian's civetweb
  std::unique_ptr<Exposer> exposer(new Exposer(std::move(options)));
  const ExposerOptions& opts = exposer->options_;
  // civetweb wants IPv6 literals in brackets: "[::1]:9090".
  const bool ipv6 = opts.bind_address.find(':') != std::string::npos;
  const std::string listen = ipv6 ? absl::StrCat("[", opts.bind_address, "]:", opts.port)
                                  : absl::StrCat(opts.bind_address, ":", opts.port);
  static CivetCallbacks callbacks = [] {
    CivetCallbacks c;  // its constructor zeroes every callback
    c.begin_request = &Exposer::BeginRequest;
    c.log_message = SilentLog;
    return c;
  }();
  try {
    exposer->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", listen, "num_threads",
                                 absl::StrCat(opts.num_threads), "request_timeout_ms", "10000",
                                 "enable_keep_alive", "no"},
        &callbacks);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics exposer: cannot listen on ", listen, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->exposer_->GetListeningPorts();
  if (ports.empty() || ports[0] <= 0) {
    return absl::InternalError(
        absl::StrCat("metrics exposer: listening on ", listen, " but no bound port reported"));
  }
  exposer->port_ = ports[0];
  for (const auto& c : collectables) exposer->exposer_->RegisterCollectable(c);
  std::lock_guard<std::mutex> lock(RoutesMutex());
  Routes()[exposer->port_] = exposer.get();
  return exposer;
}

int Exposer::BeginRequest(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const absl::string_view uri = info->local_uri ? info->local_uri : "";
  const absl::string_view method = info->request_method ? info->request_method : "";
  const bool head = method == "HEAD";
  if (uri == "/metrics") {
    if (method == "GET") return 0;  // prometheus-cpp renders it
    Reply(conn, 405, "Method Not Allowed", "only GET\n", false);
    return 405;
  }
  const bool ready_probe = uri == "/readyz";
  if (uri != "/healthz" && !ready_probe) {
    // civetweb would route "/metrics/anything" to the /metrics handler.
    Reply(conn, 404, "Not Found", "not found\n", head);
    return 404;
  }
  if (method != "GET" && !head) {
    Reply(conn, 405, "Method Not Allowed", "only GET and HEAD\n", false);
    return 405;
  }
  std::lock_guard<std::mutex> lock(RoutesMutex());
  auto it = Routes().find(info->server_port);
  if (it == Routes().end()) {
    Reply(conn, 503, "Service Unavailable", "starting\n", head);  // before Create registered it
    return 503;
  }
  return it->second->AnswerProbe(conn, ready_probe, head);
}

int Exposer::AnswerProbe(mg_connection* conn, bool ready_probe, bool head) const {
  const bool live = Ask(options_.live);
  if (!ready_probe) {
    if (live) {
      Reply(conn, 200, "OK", "ok\n", head);
      return 200;
    }
    Reply(conn, 503, "Service Unavailable", "not alive\n", head);
    return 503;
  }
  if (live && Ask(options_.ready)) {
    Reply(conn, 200, "OK", "ready\n", head);
    return 200;
  }
  Reply(conn, 503, "Service Unavailable", "not ready\n", head);
  return 503;
}

}  // namespace provp::metrics
