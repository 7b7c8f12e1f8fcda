// Implementation of rpc_service.h.
#include "server/rpc_service.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <grpcpp/support/proto_buffer_reader.h>

#include "absl/strings/str_cat.h"
#include "core/util/error_reason.h"
#include "server/state/errors.h"
#include "server/state/request_parser.h"

namespace provp::server {

absl::Status ParseRequest(const grpc::ByteBuffer& bytes, google::protobuf::Message* out) {
  if (!bytes.Valid()) {
    return InvalidArgument(kReasonMalformedMessage, "the call carried no request message");
  }
  // ProtoBufferReader needs a mutable buffer; a copy shares the slices.
  grpc::ByteBuffer shared(bytes);
  return ParseRequest(
      static_cast<int64_t>(shared.Length()),
      [&]() -> std::unique_ptr<google::protobuf::io::ZeroCopyInputStream> {
        return std::make_unique<grpc::ProtoBufferReader>(&shared);
      },
      out);
}

absl::Status InStream(const absl::Status& status, int64_t index) {
  return util::WithMessage(status,
                           absl::StrCat("message ", index, " of the stream: ", status.message()));
}

RpcService::RpcService(RpcEnv env, const char* service) : env_(env), service_(service) {}

const RpcService::Method& RpcService::Register(const char* method,
                                               const google::protobuf::Descriptor* request,
                                               const google::protobuf::Descriptor* response,
                                               bool client_streaming, bool server_streaming) {
  const google::protobuf::ServiceDescriptor* svc =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_);
  const google::protobuf::MethodDescriptor* md =
      svc != nullptr ? svc->FindMethodByName(method) : nullptr;
  if (md == nullptr || md->input_type() != request || md->output_type() != response ||
      md->client_streaming() != client_streaming || md->server_streaming() != server_streaming) {
    std::fprintf(stderr, "provp: %s/%s is registered with a kind or types its proto lacks\n",
                 service_.c_str(), method);
    std::abort();
  }
  const char* type = client_streaming ? (server_streaming ? "bidi_stream" : "client_stream")
                                      : (server_streaming ? "server_stream" : "unary");
  registered_.push_back(Method{method, absl::StrCat("/", service_, "/", method), type});
  return registered_.back();
}

}  // namespace provp::server
