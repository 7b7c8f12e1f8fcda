// Implementation of classification_service.h.
#include "server/classification_service.h"

#include "core/util/status_macros.h"
#include "server/state/errors.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.ClassificationService";

}  // namespace

ClassificationServiceImpl::ClassificationServiceImpl(RpcEnv env, Classifier* classifier)
    : RpcService(env, kService), classifier_(classifier) {
  AddUnary("Classify", Scope::kClassify, &ClassificationServiceImpl::Classify);
  AddBidiStream("StreamClassify", Scope::kClassify, &ClassificationServiceImpl::StreamClassify);
  AddUnary("EmbedImages", Scope::kClassify, &ClassificationServiceImpl::EmbedImages);
  AddUnary("EmbedTexts", Scope::kClassify, &ClassificationServiceImpl::EmbedTexts);
  AddUnary("GetServerInfo", Scope::kClassify, &ClassificationServiceImpl::GetServerInfo);
}

void ClassificationServiceImpl::OnMalformedRequest(const std::string& method) {
  if (method != "GetServerInfo") env_.metrics.rejected->WithLabels({"invalid"}).Increment();
}

absl::Status ClassificationServiceImpl::Classify(Rpc& rpc, const v1::ClassifyRequest* request,
                                                 v1::ClassifyResponse* response) {
  absl::StatusOr<v1::ClassifyResponse> r =
      classifier_->Classify(*request, rpc.deadline(), [&] { return rpc.cancelled(); });
  if (r.status().code() == absl::StatusCode::kInvalidArgument) {
    env_.metrics.rejected
        ->WithLabels({ReasonOf(r.status()) == "TOO_MANY_IMAGES" ? "too_large" : "invalid"})
        .Increment();
  }
  RETURN_IF_ERROR(r.status());
  *response = *std::move(r);
  return absl::OkStatus();
}

absl::Status ClassificationServiceImpl::StreamClassify(
    Rpc& rpc, RequestReader<v1::ClassifyRequest>& reader,
    grpc::ServerReaderWriter<v1::ClassifyResponse, grpc::ByteBuffer>* stream) {
  v1::ClassifyRequest request;
  while (true) {
    // A message that does not parse ends the stream (INVALID_ARGUMENT
    // MALFORMED_MESSAGE, after the earlier messages were answered): unlike
    // a request that fails validation, it has no request_id to answer to,
    // and the client's encoder is broken.
    ASSIGN_OR_RETURN(bool more, reader.Read(&request));
    if (!more) break;
    // Streams have no per-message deadline; bound each request by the
    // stream's deadline.
    absl::StatusOr<v1::ClassifyResponse> r =
        classifier_->Classify(request, rpc.deadline(), [&] { return rpc.cancelled(); });
    v1::ClassifyResponse response;
    if (r.ok()) {
      response = *std::move(r);
    } else {
      response.set_request_id(request.request_id());
      *response.mutable_error() = ToRpcStatus(r.status());
    }
    if (!stream->Write(response)) break;
    if (env_.draining.load()) break;
  }
  // A stream cut short by a drain says so (issue 14): after its in-flight
  // message is answered, UNAVAILABLE with reason DRAINING tells the client
  // to reconnect elsewhere, where OK would read as a normal end.
  if (env_.draining.load()) {
    ErrorDetail d;
    d.retry_after_ms = 1000;
    return MakeError(absl::StatusCode::kUnavailable, "DRAINING",
                     "server is shutting down; reconnect to continue the stream", d);
  }
  return absl::OkStatus();
}

absl::Status ClassificationServiceImpl::EmbedImages(Rpc& rpc, const v1::EmbedImagesRequest* req,
                                                    v1::EmbedImagesResponse* resp) {
  ASSIGN_OR_RETURN(*resp,
                   classifier_->EmbedImages(*req, rpc.deadline(), [&] { return rpc.cancelled(); }));
  return absl::OkStatus();
}

absl::Status ClassificationServiceImpl::EmbedTexts(Rpc& rpc, const v1::EmbedTextsRequest* req,
                                                   v1::EmbedTextsResponse* resp) {
  ASSIGN_OR_RETURN(*resp, classifier_->EmbedTexts(*req));
  return absl::OkStatus();
}

absl::Status ClassificationServiceImpl::GetServerInfo(Rpc& rpc, const v1::GetServerInfoRequest*,
                                                      v1::ServerInfo* resp) {
  const engine::ModelInfo& info = classifier_->model_info();
  const Limits& limits = classifier_->limits();
  resp->set_version(PROVP_VERSION);
  resp->set_backbone(info.backbone);
  resp->set_backbone_description(info.description);
  resp->set_device(info.device);
  resp->set_image_resolution(info.image_resolution);
  resp->set_embedding_dimension(info.embed_dim);
  resp->set_max_images_per_request(limits.max_images_per_request);
  resp->set_max_pixels_per_image(limits.max_pixels_per_image);
  resp->set_max_classes_per_request(limits.max_classes_per_request);
  resp->set_max_message_bytes(limits.max_message_bytes);
  resp->add_default_templates(kDefaultClassifyTemplate);
  return absl::OkStatus();
}

}  // namespace provp::server
