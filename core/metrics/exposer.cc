// civetweb-backed /metrics, /healthz and /readyz (see exposer.h). Only the
// C API of civetweb is used; no document root is configured, so the server
// never serves files.
#include "core/metrics/exposer.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/metrics/text_format.h"

// Debian's libcivetweb.so.1 creates its worker threads with a hard-coded
// 100 KiB stack. In a process that also loads LibTorch and OpenBLAS, their
// thread-local storage (~100 KiB per thread) is carved out of that stack, so
// glibc refuses to create the thread ("Cannot create first worker thread").
// This definition interposes the libc function for the whole process and
// raises requests below 1 MiB to 1 MiB; larger requests pass unchanged. It
// lives here, beside the only caller that needs it, so every binary that
// serves metrics gets it.
extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t stack_size) {
  using SetStackSize = int (*)(pthread_attr_t*, size_t);
  static const SetStackSize real =
      reinterpret_cast<SetStackSize>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  constexpr size_t kMinimumStack = size_t{1} << 20;
  if (real == nullptr) return 0;  // Keep the default stack (8 MiB) if lookup fails.
  return real(attr, stack_size < kMinimumStack ? kMinimumStack : stack_size);
}

namespace provp::metrics {
namespace {

void InitCivetwebOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

// Keeps civetweb from printing its own log lines to stderr; errors that
// matter reach the caller through mg_start2's error buffer.
int SilentLog(const mg_connection*, const char*) { return 1; }

void Reply(mg_connection* conn, int code, absl::string_view reason, absl::string_view content_type,
           absl::string_view body, bool head_only) {
  const std::string header =
      absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                   "\r\nContent-Length: ", body.size(),
                   "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  mg_write(conn, header.data(), header.size());
  if (!head_only && !body.empty()) mg_write(conn, body.data(), body.size());
}

// Opens and closes one TCP connection to the exposer's own port. civetweb's
// accept loop only notices mg_stop() when poll() returns, which otherwise
// takes up to its 2 s quantum; a connection wakes it at once.
void PokeListener(const std::string& bind_address, int port) {
  std::string target = bind_address;
  if (target == "0.0.0.0") target = "127.0.0.1";
  if (target == "::") target = "::1";
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, target.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, target.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return;  // not a literal: shutdown just takes the slow path
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  close(fd);
}

}  // namespace

Exposer::Exposer(const Registry* registry, ExposerOptions options)
    : registry_(registry), options_(std::move(options)) {}

Exposer::~Exposer() {
  if (context_ == nullptr) return;
  // mg_stop joins every worker, so no handler can run on a dead `this`.
  // While it waits, keep poking the listener so the accept loop wakes up.
  std::atomic<bool> stopped{false};
  std::thread waker([this, &stopped] {
    while (!stopped.load()) {
      PokeListener(options_.bind_address, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  mg_stop(context_);
  stopped.store(true);
  waker.join();
}

absl::StatusOr<std::unique_ptr<Exposer>> Exposer::Create(const Registry* registry,
                                                         ExposerOptions options) {
  if (registry == nullptr) return absl::InvalidArgumentError("metrics exposer: registry is null");
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
  InitCivetwebOnce();
  std::unique_ptr<Exposer> exposer(new Exposer(registry, std::move(options)));
  const ExposerOptions& opts = exposer->options_;

  // civetweb wants IPv6 literals in brackets: "[::1]:9090".
  const bool ipv6 = opts.bind_address.find(':') != std::string::npos;
  const std::string listen = ipv6 ? absl::StrCat("[", opts.bind_address, "]:", opts.port)
                                  : absl::StrCat(opts.bind_address, ":", opts.port);
  const std::string threads = absl::StrCat(opts.num_threads);
  const char* config[] = {
      "listening_ports", listen.c_str(),      "num_threads", threads.c_str(), "request_timeout_ms",
      "10000",           "enable_keep_alive", "no",          nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = SilentLog;
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.user_data = exposer.get();
  init.configuration_options = config;
  char error_text[256] = {0};
  unsigned error_code = 0;
  mg_error_data error;
  std::memset(&error, 0, sizeof(error));
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);

  exposer->context_ = mg_start2(&init, &error);
  if (exposer->context_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("metrics exposer: cannot listen on ", listen, ": ",
                                               error_text[0] ? error_text : "unknown error"));
  }
  mg_server_port ports[4];
  std::memset(ports, 0, sizeof(ports));
  const int n = mg_get_server_ports(exposer->context_, 4, ports);
  if (n < 1 || ports[0].port <= 0) {
    return absl::InternalError(
        absl::StrCat("metrics exposer: listening on ", listen, " but no bound port reported"));
  }
  exposer->port_ = ports[0].port;
  for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
    mg_set_request_handler(exposer->context_, path, &Exposer::HandleRequest, exposer.get());
  }
  return exposer;
}

int Exposer::HandleRequest(mg_connection* conn, void* self) {
  return static_cast<Exposer*>(self)->Handle(conn);
}

int Exposer::Handle(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const absl::string_view method = info->request_method ? info->request_method : "";
  const absl::string_view uri = info->local_uri ? info->local_uri : "";
  constexpr absl::string_view kPlain = "text/plain; charset=utf-8";
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    Reply(conn, 405, "Method Not Allowed", kPlain, "only GET and HEAD\n", false);
    return 405;
  }
  // civetweb routes "/metrics/anything" to the "/metrics" handler too.
  if (uri == "/metrics") {
    const std::string body = SerializeText(*registry_);
    Reply(conn, 200, "OK", kTextContentType, body, head);
    return 200;
  }
  if (uri == "/healthz") {
    Reply(conn, 200, "OK", kPlain, "ok\n", head);
    return 200;
  }
  if (uri == "/readyz") {
    bool ready = true;
    if (options_.ready) {
      try {
        ready = options_.ready();
      } catch (...) {
        ready = false;  // a failing probe means "not ready", never a crash
      }
    }
    if (ready) {
      Reply(conn, 200, "OK", kPlain, "ready\n", head);
      return 200;
    }
    Reply(conn, 503, "Service Unavailable", kPlain, "not ready\n", head);
    return 503;
  }
  Reply(conn, 404, "Not Found", kPlain, "not found\n", head);
  return 404;
}

}  // namespace provp::metrics
