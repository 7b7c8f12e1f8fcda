// The HTTP/JSON door beside gRPC (issue 13), for curl, browsers and HTTP
// clients that have no gRPC: the data plane only.
//   POST /v1/classify       provp.v1.ClassifyRequest    -> ClassifyResponse
//   POST /v1/embed-images   provp.v1.EmbedImagesRequest -> EmbedImagesResponse
//   POST /v1/embed-texts    provp.v1.EmbedTextsRequest  -> EmbedTextsResponse
//   GET  /v1/server-info    -> provp.v1.ServerInfo
//   GET  /v1/health[?service=NAME] -> grpc.health.v1.HealthCheckResponse
//                           (200 when SERVING, else 503)
// Bodies use protobuf's JSON mapping of the very messages the gRPC API
// takes (bytes such as images.encoded are base64). Each request becomes its
// proto and goes through the server's in-process channel to the real gRPC
// service, with `authorization` (or `x-api-key: K`, sent on as
// `authorization: Bearer K`), `traceparent` and `x-request-id` forwarded as
// metadata, so authentication, scopes, limits, validation, draining,
// metrics (grpc_server_*), logging and request ids are exactly the gRPC
// path's. A gRPC error comes back as the google.api HTTP status of its code
// with the google.rpc.Status of the trailer as JSON: {code, message,
// details: [{"@type": ".../google.rpc.ErrorInfo", reason, domain}, ...]}.
// Errors of the door itself (bad JSON, body too large, unknown route) have
// the same shape. provp_http_requests_total{route,code} counts every HTTP
// request, including those refused before they reach gRPC.
//
// It serves on a port of its own (civetweb, as the metrics exposer): the
// metrics port is meant for scrapers and probes, often on another network,
// has two workers and no authentication, while this door takes large
// authenticated bodies. One request per connection (no keep-alive):
// civetweb holds a worker thread per open connection. Plain HTTP only; put
// a TLS-terminating proxy in front when it leaves the host.
// Thread-safety: requests run on civetweb worker threads; destruction stops
// the listener and waits for requests in flight.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/state/server_metrics.h"

struct mg_connection;
struct mg_context;

namespace provp::server {

struct HttpGatewayOptions {
  // Address to bind: "0.0.0.0", "127.0.0.1", or an IPv6 literal ("::1").
  std::string bind_address = "0.0.0.0";
  // TCP port; 0 picks a free one (read it back with port()).
  int port = 8080;
  // civetweb workers: HTTP requests handled at once.
  int num_threads = 16;
  // Largest request body accepted (the server's max message size); larger
  // ones get 413 before the body is read.
  int64_t max_body_bytes = int64_t{64} << 20;
  // Deadline of each forwarded gRPC call.
  absl::Duration timeout = absl::Seconds(60);
  // CORS: when set ("*" or "https://app.example"), responses carry
  // Access-Control-Allow-Origin with it and OPTIONS preflights are
  // answered, so pages of that origin can call the door. "" = no CORS.
  std::string allow_origin;
};

// The google.api HTTP status of a gRPC code (google/rpc/code.proto):
// INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403,
// NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, ...
int HttpStatusOf(grpc::StatusCode code);

class HttpGateway {
 public:
  // Starts listening. `channel` reaches the gRPC services (the server's
  // in-process channel); `metrics` must outlive the gateway.
  // INVALID_ARGUMENT for bad options, UNAVAILABLE when the port cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Create(std::shared_ptr<grpc::Channel> channel,
                                                             ServerMetrics* metrics,
                                                             HttpGatewayOptions options);
  ~HttpGateway();
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // The bound TCP port (the real one when options.port was 0).
  int port() const { return port_; }

 private:
  HttpGateway(std::shared_ptr<grpc::Channel> channel, ServerMetrics* metrics,
              HttpGatewayOptions options);
  static int HandleRequest(mg_connection* conn, void* self);
  // Serves one request; returns the status sent and the route label.
  int Serve(mg_connection* conn, std::string* route);

  const HttpGatewayOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  ServerMetrics* const metrics_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace provp::server
