// Implementation of classification_service.h.
#include "server/classification_service.h"

#include "core/util/status_macros.h"
#include "server/state/errors.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.ClassificationService";

}  // namespace

grpc::Status ClassificationServiceImpl::Classify(grpc::ServerContext* ctx,
                                                 const v1::ClassifyRequest* request,
                                                 v1::ClassifyResponse* response) {
  Rpc rpc(env_, ctx, kService, "Classify", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
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
  });
}

grpc::Status ClassificationServiceImpl::StreamClassify(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::ClassifyResponse, v1::ClassifyRequest>* stream) {
  Rpc rpc(env_, ctx, kService, "StreamClassify", "bidi_stream", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    v1::ClassifyRequest request;
    while (stream->Read(&request)) {
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
  });
}

grpc::Status ClassificationServiceImpl::EmbedImages(grpc::ServerContext* ctx,
                                                    const v1::EmbedImagesRequest* req,
                                                    v1::EmbedImagesResponse* resp) {
  Rpc rpc(env_, ctx, kService, "EmbedImages", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(
        *resp, classifier_->EmbedImages(*req, rpc.deadline(), [&] { return rpc.cancelled(); }));
    return absl::OkStatus();
  });
}

grpc::Status ClassificationServiceImpl::EmbedTexts(grpc::ServerContext* ctx,
                                                   const v1::EmbedTextsRequest* req,
                                                   v1::EmbedTextsResponse* resp) {
  Rpc rpc(env_, ctx, kService, "EmbedTexts", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, classifier_->EmbedTexts(*req));
    return absl::OkStatus();
  });
}

grpc::Status ClassificationServiceImpl::GetServerInfo(grpc::ServerContext* ctx,
                                                      const v1::GetServerInfoRequest*,
                                                      v1::ServerInfo* resp) {
  Rpc rpc(env_, ctx, kService, "GetServerInfo", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
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
  });
}

}  // namespace provp::server
