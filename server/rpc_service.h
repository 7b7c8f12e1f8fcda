// The base of provp's gRPC services (issue 14). Each method is registered
// with a sync handler that takes the request as raw bytes (grpc::ByteBuffer)
// so that a message that does not parse reaches provp instead of gRPC's
// deserializer (which answers INTERNAL with no detail, no request id, no log
// line and no metric). The registered handler builds the call's Rpc (request
// id, authentication, drain check), parses the request with
// server/state/request_parser.h inside it, and only then calls the typed
// handler; a parse failure is INVALID_ARGUMENT MALFORMED_MESSAGE, logged,
// counted and converted like every other refusal. Streamed requests are read
// through RequestReader, which parses each message the same way.
// Registration checks each method against the proto descriptor (kind and
// message types) and aborts on a mismatch: a programming error. Handlers
// run on gRPC's sync threads; the base is immutable after construction.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/method_handler.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/util/status_macros.h"
#include "server/auth.h"
#include "server/rpc.h"

namespace provp::server {

// Parses one request message from gRPC's bytes (request_parser.h):
// INVALID_ARGUMENT MALFORMED_MESSAGE when it does not parse or is absent.
absl::Status ParseRequest(const grpc::ByteBuffer& bytes, google::protobuf::Message* out);

// `status` with "message N of the stream: " before its message (N from 1).
absl::Status InStream(const absl::Status& status, int64_t index);

// The request side of a client- or bidi-streaming call.
template <typename Req>
class RequestReader {
 public:
  // `on_malformed` runs once for a message that does not parse.
  RequestReader(grpc::internal::ReaderInterface<grpc::ByteBuffer>* raw,
                std::function<void()> on_malformed)
      : raw_(raw), on_malformed_(std::move(on_malformed)) {}

  // true: *msg holds the next message; false: the client closed its side;
  // INVALID_ARGUMENT MALFORMED_MESSAGE: the next message does not parse (the
  // call should end with it).
  absl::StatusOr<bool> Read(Req* msg) {
    grpc::ByteBuffer bytes;
    if (!raw_->Read(&bytes)) return false;
    ++count_;
    absl::Status parsed = ParseRequest(bytes, msg);
    if (!parsed.ok()) {
      if (on_malformed_) on_malformed_();
      return InStream(parsed, count_);
    }
    return true;
  }

  // Messages read so far.
  int64_t count() const { return count_; }

 private:
  grpc::internal::ReaderInterface<grpc::ByteBuffer>* const raw_;
  const std::function<void()> on_malformed_;
  int64_t count_ = 0;
};

class RpcService : public grpc::Service {
 protected:
  // `service`: the proto service's full name ("provp.v1.DatasetService").
  RpcService(RpcEnv env, const char* service);

  template <typename Impl, typename Req, typename Resp>
  void AddUnary(const char* method, Scope scope,
                absl::Status (Impl::*fn)(Rpc&, const Req*, Resp*)) {
    const Method& m = Register(method, Req::descriptor(), Resp::descriptor(), false, false);
    Impl* impl = static_cast<Impl*>(this);
    AddMethod(new grpc::internal::RpcServiceMethod(
        m.path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC,
        new grpc::internal::RpcMethodHandler<RpcService, grpc::ByteBuffer, Resp>(
            [&m, scope, fn, impl](RpcService* self, grpc::ServerContext* ctx,
                                  const grpc::ByteBuffer* bytes, Resp* resp) {
              Rpc rpc(self->env_, ctx, self->service_.c_str(), m.name.c_str(), m.type, scope);
              return Handle(rpc, [&]() -> absl::Status {
                Req req;
                RETURN_IF_ERROR(self->Parse(m, *bytes, &req));
                return (impl->*fn)(rpc, &req, resp);
              });
            },
            this)));
  }

  template <typename Impl, typename Req, typename Resp>
  void AddServerStream(const char* method, Scope scope,
                       absl::Status (Impl::*fn)(Rpc&, const Req*, grpc::ServerWriter<Resp>*)) {
    const Method& m = Register(method, Req::descriptor(), Resp::descriptor(), false, true);
    Impl* impl = static_cast<Impl*>(this);
    AddMethod(new grpc::internal::RpcServiceMethod(
        m.path.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING,
        new grpc::internal::ServerStreamingHandler<RpcService, grpc::ByteBuffer, Resp>(
            [&m, scope, fn, impl](RpcService* self, grpc::ServerContext* ctx,
                                  const grpc::ByteBuffer* bytes, grpc::ServerWriter<Resp>* writer) {
              Rpc rpc(self->env_, ctx, self->service_.c_str(), m.name.c_str(), m.type, scope);
              return Handle(rpc, [&]() -> absl::Status {
                Req req;
                RETURN_IF_ERROR(self->Parse(m, *bytes, &req));
                return (impl->*fn)(rpc, &req, writer);
              });
            },
            this)));
  }

  template <typename Impl, typename Req, typename Resp>
  void AddClientStream(const char* method, Scope scope,
                       absl::Status (Impl::*fn)(Rpc&, RequestReader<Req>&, Resp*)) {
    const Method& m = Register(method, Req::descriptor(), Resp::descriptor(), true, false);
    Impl* impl = static_cast<Impl*>(this);
    AddMethod(new grpc::internal::RpcServiceMethod(
        m.path.c_str(), grpc::internal::RpcMethod::CLIENT_STREAMING,
        new grpc::internal::ClientStreamingHandler<RpcService, grpc::ByteBuffer, Resp>(
            [&m, scope, fn, impl](RpcService* self, grpc::ServerContext* ctx,
                                  grpc::ServerReader<grpc::ByteBuffer>* raw, Resp* resp) {
              Rpc rpc(self->env_, ctx, self->service_.c_str(), m.name.c_str(), m.type, scope);
              RequestReader<Req> reader(raw, [self, &m] { self->OnMalformedRequest(m.name); });
              return Handle(rpc, [&]() -> absl::Status { return (impl->*fn)(rpc, reader, resp); });
            },
            this)));
  }

  template <typename Impl, typename Req, typename Resp>
  void AddBidiStream(const char* method, Scope scope,
                     absl::Status (Impl::*fn)(Rpc&, RequestReader<Req>&,
                                              grpc::ServerReaderWriter<Resp, grpc::ByteBuffer>*)) {
    const Method& m = Register(method, Req::descriptor(), Resp::descriptor(), true, true);
    Impl* impl = static_cast<Impl*>(this);
    AddMethod(new grpc::internal::RpcServiceMethod(
        m.path.c_str(), grpc::internal::RpcMethod::BIDI_STREAMING,
        new grpc::internal::BidiStreamingHandler<RpcService, grpc::ByteBuffer, Resp>(
            [&m, scope, fn, impl](RpcService* self, grpc::ServerContext* ctx,
                                  grpc::ServerReaderWriter<Resp, grpc::ByteBuffer>* stream) {
              Rpc rpc(self->env_, ctx, self->service_.c_str(), m.name.c_str(), m.type, scope);
              RequestReader<Req> reader(stream, [self, &m] { self->OnMalformedRequest(m.name); });
              return Handle(rpc,
                            [&]() -> absl::Status { return (impl->*fn)(rpc, reader, stream); });
            },
            this)));
  }

  // Called once for each request message of `method` that does not parse
  // (after its MALFORMED_MESSAGE status is made, before it is sent): a
  // service counts refusals of its own kind here.
  virtual void OnMalformedRequest(const std::string& method) {}

  const RpcEnv env_;

 private:
  struct Method {
    std::string name;  // "Classify"
    std::string path;  // "/provp.v1.ClassificationService/Classify"
    const char* type;  // "unary", "client_stream", "server_stream", "bidi_stream"
  };

  // ParseRequest, telling OnMalformedRequest of a failure.
  absl::Status Parse(const Method& m, const grpc::ByteBuffer& bytes,
                     google::protobuf::Message* out) {
    absl::Status parsed = ParseRequest(bytes, out);
    if (!parsed.ok()) OnMalformedRequest(m.name);
    return parsed;
  }

  // Checks `method` against the descriptor; aborts when it does not match.
  const Method& Register(const char* method, const google::protobuf::Descriptor* request,
                         const google::protobuf::Descriptor* response, bool client_streaming,
                         bool server_streaming);

  const std::string service_;
  // A deque: RpcServiceMethod keeps a pointer to each path.
  std::deque<Method> registered_;
};

}  // namespace provp::server
