// Implementation of http_gateway.h: civetweb's C API with one request
// handler for every URI; the routes are a small table of (method, path,
// label, call). Nothing here checks keys, limits or fields: the gRPC
// service behind the in-process channel does, so the two doors cannot
// drift apart. The door only refuses what never becomes a call (unknown
// route or method, a body over the size limit or not JSON, header values
// gRPC metadata cannot carry).
#include "server/http_gateway.h"

#include <civetweb.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "core/metrics/civetweb_support.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "provp/v1/classification.grpc.pb.h"
#include "server/state/errors.h"
#include "server/state/server_metrics.h"

namespace provp::server {
namespace {

namespace pbutil = google::protobuf::util;

// Longest header value forwarded as metadata (a traceparent is 55 bytes, a
// bearer key a few dozen; gRPC's own limit on all metadata is 8 KiB).
constexpr size_t kMaxHeaderValue = 4096;

struct Reply {
  int status = 200;
  std::string body;
  // Extra header lines, each ending in "\r\n".
  std::string headers;
  // The gRPC call was made (so its initial metadata can be read).
  bool called = false;
};

// Keeps civetweb from printing to stderr; start-up errors come back through
// mg_start2's error text.
int SilentLog(const mg_connection*, const char*) { return 1; }

std::string StatusJson(const google::rpc::Status& status) {
  std::string json;
  pbutil::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  if (!pbutil::MessageToJsonString(status, &json, print).ok()) {
    // A detail whose type is not linked in cannot be printed; the code and
    // message always can.
    google::rpc::Status bare;
    bare.set_code(status.code());
    bare.set_message(status.message());
    json.clear();
    (void)pbutil::MessageToJsonString(bare, &json, print);
  }
  return json + "\n";
}

// An error of the door itself, shaped like the service's errors.
Reply DoorError(int http_status, grpc::StatusCode code, absl::string_view reason,
                absl::string_view message, const google::protobuf::Message* detail = nullptr) {
  google::rpc::Status status;
  status.set_code(code);
  status.set_message(std::string(message));
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(kErrorDomain);
  status.add_details()->PackFrom(info);
  if (detail != nullptr) status.add_details()->PackFrom(*detail);
  return Reply{http_status, StatusJson(status), ""};
}

// A failed gRPC call: the google.rpc.Status of the trailer (reason and
// details as the service set them), or one made of code and message.
Reply CallError(const grpc::Status& s) {
  google::rpc::Status status;
  if (s.error_details().empty() || !status.ParseFromString(s.error_details())) {
    status.Clear();
    status.set_code(s.error_code());
    status.set_message(s.error_message());
  }
  Reply reply{HttpStatusOf(s.error_code()), StatusJson(status), ""};
  // RetryInfo -> Retry-After (whole seconds, at least 1), which HTTP
  // clients and proxies understand for 429 and 503.
  for (const auto& any : status.details()) {
    google::rpc::RetryInfo retry;
    if (!any.UnpackTo(&retry)) continue;
    const double seconds = retry.retry_delay().seconds() + retry.retry_delay().nanos() * 1e-9;
    absl::StrAppend(&reply.headers,
                    "Retry-After: ", std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds))),
                    "\r\n");
    break;
  }
  return reply;
}

// gRPC metadata values must be printable ASCII; anything else would fail
// the call inside gRPC, so it is refused here with a reason.
bool ForwardableHeader(absl::string_view v) {
  if (v.size() > kMaxHeaderValue) return false;
  for (char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The incoming request as the routes see it.
struct Incoming {
  mg_connection* conn;
  std::string method;
  std::string query;
  std::string body;
};

using Call = std::function<Reply(const Incoming&, grpc::ClientContext*)>;

struct Route {
  const char* method;
  const char* path;
  const char* label;
  bool has_body;
  Call call;
};

// Parses `in.body` (or nothing, for a GET) into Req, runs `rpc`, prints the
// response. `ok_status` picks the HTTP status of a successful call.
template <typename Req, typename Resp>
Reply Unary(const Incoming& in, grpc::ClientContext* ctx, bool has_body,
            const std::function<grpc::Status(grpc::ClientContext*, const Req&, Resp*)>& rpc,
            const std::function<int(const Resp&)>& ok_status = nullptr) {
  Req request;
  if (has_body) {
    if (absl::StripAsciiWhitespace(in.body).empty()) {
      return DoorError(400, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_JSON",
                       absl::StrCat("the request body is empty; send a ",
                                    Req::descriptor()->full_name(), " as JSON"));
    }
    pbutil::JsonParseOptions parse;
    parse.ignore_unknown_fields = false;  // a misspelt field is an error, not a silent default
    const auto parsed = pbutil::JsonStringToMessage(in.body, &request, parse);
    if (!parsed.ok()) {
      return DoorError(
          400, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_JSON",
          absl::StrCat("the request body is not a ", Req::descriptor()->full_name(),
                       " in protobuf's JSON mapping: ",
                       absl::string_view(parsed.message().data(), parsed.message().size())));
    }
  }
  Resp response;
  const grpc::Status s = rpc(ctx, request, &response);
  if (!s.ok()) {
    Reply error = CallError(s);
    error.called = true;
    return error;
  }
  std::string json;
  pbutil::JsonPrintOptions print;
  // Zero scores, empty lists and false flags are printed too, so clients
  // need not know proto3's default-omission rule.
  print.always_print_primitive_fields = true;
  // Field names as in the .proto files and `provp --json` (class_index,
  // request_id); requests may use either spelling.
  print.preserve_proto_field_names = true;
  const auto printed = pbutil::MessageToJsonString(response, &json, print);
  if (!printed.ok()) {
    return DoorError(
        500, grpc::StatusCode::INTERNAL, "INTERNAL_ERROR",
        absl::StrCat("cannot print the response as JSON: ",
                     absl::string_view(printed.message().data(), printed.message().size())));
  }
  return Reply{ok_status ? ok_status(response) : 200, json + "\n", "", true};
}

void Send(mg_connection* conn, const Reply& reply, const std::string& common_headers) {
  const std::string head =
      absl::StrCat("HTTP/1.1 ", reply.status, " ", mg_get_response_code_text(conn, reply.status),
                   "\r\nContent-Type: application/json\r\nContent-Length: ", reply.body.size(),
                   "\r\nCache-Control: no-store\r\nConnection: close\r\n", common_headers,
                   reply.headers, "\r\n");
  mg_write(conn, head.data(), head.size());
  const mg_request_info* info = mg_get_request_info(conn);
  const bool head_only = info->request_method && absl::string_view(info->request_method) == "HEAD";
  if (!head_only && !reply.body.empty()) mg_write(conn, reply.body.data(), reply.body.size());
}

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DATA_LOSS:
    default:
      return 500;
  }
}

HttpGateway::HttpGateway(std::shared_ptr<grpc::Channel> channel, ServerMetrics* metrics,
                         HttpGatewayOptions options)
    : options_(std::move(options)), channel_(std::move(channel)), metrics_(metrics) {}

HttpGateway::~HttpGateway() {
  if (ctx_ == nullptr) return;
  // mg_stop joins every worker, so no handler runs on a dead `this`. While
  // it waits, keep poking the listener so the accept loop wakes up.
  std::atomic<bool> stopped{false};
  std::thread waker([this, &stopped] {
    while (!stopped.load()) {
      metrics::PokeListener(options_.bind_address, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  mg_stop(ctx_);
  stopped.store(true);
  waker.join();
}

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Create(
    std::shared_ptr<grpc::Channel> channel, ServerMetrics* metrics, HttpGatewayOptions options) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-port must be in [0, 65535] (or -1 for off), got ", options.port));
  }
  if (options.num_threads < 1 || options.num_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-threads must be in [1, 1024], got ", options.num_threads));
  }
  if (options.bind_address.empty() ||
      options.bind_address.find_first_of(" ,[]") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-bind: bad address '", options.bind_address, "'"));
  }
  if (!(options.timeout > absl::ZeroDuration()) || options.max_body_bytes <= 0) {
    return absl::InvalidArgumentError("the HTTP timeout and body limit must be positive");
  }
  if (channel == nullptr || metrics == nullptr) {
    return absl::InvalidArgumentError("the HTTP gateway needs a channel and metrics");
  }
  metrics::RequireCivetwebWorkerStacks();
  std::unique_ptr<HttpGateway> gateway(
      new HttpGateway(std::move(channel), metrics, std::move(options)));
  const HttpGatewayOptions& o = gateway->options_;

  // civetweb wants IPv6 literals in brackets: "[::1]:8080".
  const bool ipv6 = o.bind_address.find(':') != std::string::npos;
  const std::string listen = ipv6 ? absl::StrCat("[", o.bind_address, "]:", o.port)
                                  : absl::StrCat(o.bind_address, ":", o.port);
  const std::string threads = absl::StrCat(o.num_threads);
  // The socket timeout for reading a request and writing its answer; a
  // call itself is bounded by options.timeout.
  const std::string io_timeout =
      absl::StrCat(std::max<int64_t>(10000, absl::ToInt64Milliseconds(o.timeout)));
  const char* config[] = {"listening_ports", listen.c_str(), "num_threads", threads.c_str(),
                          "request_timeout_ms", io_timeout.c_str(), "enable_keep_alive", "no",
                          "decode_url", "yes",
                          // civetweb answers CORS preflights itself, allowing
                          // every origin, unless these are empty; the door
                          // decides (options.allow_origin).
                          "access_control_allow_origin", "", "access_control_allow_methods", "",
                          "access_control_allow_headers", "", nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = SilentLog;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = gateway.get();
  init.configuration_options = config;
  char error_text[256] = {0};
  unsigned error_code = 0;
  mg_error_data error{};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  gateway->ctx_ = mg_start2(&init, &error);
  if (gateway->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("HTTP gateway: cannot listen on ", listen, ": ",
                                               error_text[0] ? error_text : "mg_start failed"));
  }
  mg_server_port ports[4] = {};
  const int n = mg_get_server_ports(gateway->ctx_, 4, ports);
  if (n < 1 || ports[0].port <= 0) {
    return absl::InternalError(
        absl::StrCat("HTTP gateway: listening on ", listen, " but no bound port reported"));
  }
  gateway->port_ = ports[0].port;
  mg_set_request_handler(gateway->ctx_, "/", &HttpGateway::HandleRequest, gateway.get());
  return gateway;
}

int HttpGateway::HandleRequest(mg_connection* conn, void* self) {
  auto* gateway = static_cast<HttpGateway*>(self);
  std::string route = "other";
  int status = 500;
  try {
    status = gateway->Serve(conn, &route);
  } catch (const std::exception& e) {
    // Nothing a request sends may take the process down.
    Send(conn,
         DoorError(500, grpc::StatusCode::INTERNAL, "INTERNAL_ERROR",
                   absl::StrCat("internal error: ", e.what())),
         "");
  } catch (...) {
    Send(conn, DoorError(500, grpc::StatusCode::INTERNAL, "INTERNAL_ERROR", "internal error"), "");
  }
  gateway->metrics_->http_requests->WithLabels({route, absl::StrCat(status)}).Increment();
  return status;
}

int HttpGateway::Serve(mg_connection* conn, std::string* route_label) {
  const mg_request_info* info = mg_get_request_info(conn);
  Incoming in;
  in.conn = conn;
  in.method = info->request_method ? info->request_method : "";
  const std::string path = info->local_uri ? info->local_uri : "";
  in.query = info->query_string ? info->query_string : "";

  std::string common;  // headers every answer carries
  const bool cors = !options_.allow_origin.empty();
  if (cors) {
    absl::StrAppend(&common, "Access-Control-Allow-Origin: ", options_.allow_origin,
                    "\r\nAccess-Control-Expose-Headers: X-Request-Id, Retry-After\r\n",
                    options_.allow_origin == "*" ? "" : "Vary: Origin\r\n");
  }
  auto send = [&](const Reply& reply) {
    Send(conn, reply, common);
    return reply.status;
  };

  auto classify = v1::ClassificationService::NewStub(channel_);
  auto health = grpc::health::v1::Health::NewStub(channel_);
  using v1::ClassificationService;
  const std::vector<Route> routes = {
      {"POST", "/v1/classify", "classify", true,
       [&](const Incoming& r, grpc::ClientContext* c) {
         return Unary<v1::ClassifyRequest, v1::ClassifyResponse>(
             r, c, true,
             [&](auto* ctx, const auto& q, auto* p) { return classify->Classify(ctx, q, p); });
       }},
      {"POST", "/v1/embed-images", "embed-images", true,
       [&](const Incoming& r, grpc::ClientContext* c) {
         return Unary<v1::EmbedImagesRequest, v1::EmbedImagesResponse>(
             r, c, true,
             [&](auto* ctx, const auto& q, auto* p) { return classify->EmbedImages(ctx, q, p); });
       }},
      {"POST", "/v1/embed-texts", "embed-texts", true,
       [&](const Incoming& r, grpc::ClientContext* c) {
         return Unary<v1::EmbedTextsRequest, v1::EmbedTextsResponse>(
             r, c, true,
             [&](auto* ctx, const auto& q, auto* p) { return classify->EmbedTexts(ctx, q, p); });
       }},
      {"GET", "/v1/server-info", "server-info", false,
       [&](const Incoming& r, grpc::ClientContext* c) {
         return Unary<v1::GetServerInfoRequest, v1::ServerInfo>(
             r, c, false,
             [&](auto* ctx, const auto& q, auto* p) { return classify->GetServerInfo(ctx, q, p); });
       }},
      {"GET", "/v1/health", "health", false,
       [&](const Incoming& r, grpc::ClientContext* c) {
         using grpc::health::v1::HealthCheckRequest;
         using grpc::health::v1::HealthCheckResponse;
         return Unary<HealthCheckRequest, HealthCheckResponse>(
             r, c, false,
             [&](auto* ctx, const HealthCheckRequest&, HealthCheckResponse* p) {
               HealthCheckRequest q;
               char service[512] = {0};
               if (mg_get_var(r.query.data(), r.query.size(), "service", service, sizeof(service)) >
                   0) {
                 q.set_service(service);
               }
               return health->Check(ctx, q, p);
             },
             [](const HealthCheckResponse& p) {
               return p.status() == HealthCheckResponse::SERVING ? 200 : 503;
             });
       }},
  };

  const Route* route = nullptr;
  for (const Route& r : routes) {
    if (path == r.path) route = &r;
  }
  if (route == nullptr) {
    std::vector<std::string> known;
    for (const Route& r : routes) known.push_back(absl::StrCat(r.method, " ", r.path));
    return send(DoorError(
        404, grpc::StatusCode::NOT_FOUND, "NOT_FOUND",
        absl::StrCat("no route ", path, "; this door serves ", absl::StrJoin(known, ", "))));
  }
  *route_label = route->label;
  if (cors && in.method == "OPTIONS") {
    // A browser's preflight for a cross-origin POST with an API key.
    Reply preflight{204, "", ""};
    absl::StrAppend(&preflight.headers, "Access-Control-Allow-Methods: ", route->method,
                    ", OPTIONS\r\nAccess-Control-Allow-Headers: Authorization, X-Api-Key, "
                    "Content-Type, Traceparent, X-Request-Id\r\nAccess-Control-Max-Age: 600\r\n");
    return send(preflight);
  }
  const bool head_of_get = in.method == "HEAD" && absl::string_view(route->method) == "GET";
  if (in.method != route->method && !head_of_get) {
    Reply reply = DoorError(405, grpc::StatusCode::UNIMPLEMENTED, "METHOD_NOT_ALLOWED",
                            absl::StrCat(path, " takes ", route->method, ", not ", in.method));
    absl::StrAppend(&reply.headers, "Allow: ", route->method, "\r\n");
    return send(reply);
  }

  // Metadata for the call; values gRPC cannot carry are refused.
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  const char* authorization = mg_get_header(conn, "Authorization");
  const char* api_key = mg_get_header(conn, "X-Api-Key");
  struct Forward {
    const char* header;
    const char* key;
    std::string value;
  };
  std::vector<Forward> forward;
  if (authorization != nullptr) {
    forward.push_back({"Authorization", "authorization", authorization});
  } else if (api_key != nullptr) {
    forward.push_back({"X-Api-Key", "authorization",
                       absl::StrCat("Bearer ", absl::StripAsciiWhitespace(api_key))});
  }
  for (const auto& [header, key] :
       {std::pair<const char*, const char*>{"Traceparent", "traceparent"},
        {"X-Request-Id", "x-request-id"}}) {
    const char* v = mg_get_header(conn, header);
    if (v != nullptr) forward.push_back({header, key, v});
  }
  for (const Forward& f : forward) {
    if (!ForwardableHeader(f.value)) {
      return send(
          DoorError(400, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_HEADER",
                    absl::StrCat("header ", f.header, " must be printable ASCII of at most ",
                                 kMaxHeaderValue, " bytes")));
    }
    ctx.AddMetadata(f.key, f.value);
  }

  if (route->has_body) {
    const long long declared = info->content_length;  // -1: not given (chunked)
    auto too_large = [&] {
      google::rpc::QuotaFailure quota;
      auto* violation = quota.add_violations();
      violation->set_subject("max_message_bytes");
      violation->set_description(absl::StrCat(options_.max_body_bytes, " bytes"));
      return send(
          DoorError(413, grpc::StatusCode::RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE",
                    absl::StrCat("the request body is larger than the server's ",
                                 options_.max_body_bytes, " byte limit (--max-message-bytes)"),
                    &quota));
    };
    if (declared > options_.max_body_bytes) return too_large();
    if (declared > 0) in.body.reserve(static_cast<size_t>(declared));
    std::vector<char> chunk(size_t{1} << 16);
    for (;;) {
      const int n = mg_read(conn, chunk.data(), chunk.size());
      if (n < 0) {
        return send(DoorError(400, grpc::StatusCode::INVALID_ARGUMENT, "INCOMPLETE_BODY",
                              "the request body could not be read to its end"));
      }
      if (n == 0) break;
      if (static_cast<int64_t>(in.body.size()) + n > options_.max_body_bytes) return too_large();
      in.body.append(chunk.data(), static_cast<size_t>(n));
    }
  }

  Reply reply = route->call(in, &ctx);
  if (reply.called) {
    // The service's request id (the client's own x-request-id when valid).
    for (const auto* md : {&ctx.GetServerInitialMetadata(), &ctx.GetServerTrailingMetadata()}) {
      auto rid = md->find("x-request-id");
      if (rid == md->end()) continue;
      const absl::string_view id(rid->second.data(), rid->second.size());
      if (ForwardableHeader(id)) absl::StrAppend(&reply.headers, "X-Request-Id: ", id, "\r\n");
      break;
    }
  }
  return send(reply);
}

}  // namespace provp::server
