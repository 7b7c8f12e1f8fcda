// provp.v1.ClassificationService: Classify / StreamClassify / EmbedImages /
// EmbedTexts / GetServerInfo. Decodes images on the handler thread (per-item
// errors), resolves classes (prompt set's own, stored class set or inline)
// and their cached text features, encodes images through the dynamic
// batcher and scores on the CPU (cosine * logit scale, softmax, top-k).
// Thread-safe; one instance serves all calls.
#pragma once

#include "provp/v1/classification.grpc.pb.h"
#include "server/rpc.h"

namespace provp::server {

class ClassificationServiceImpl final : public v1::ClassificationService::Service {
 public:
  explicit ClassificationServiceImpl(ServerEnv* env) : env_(env) {}

  grpc::Status Classify(grpc::ServerContext* ctx, const v1::ClassifyRequest* request,
                        v1::ClassifyResponse* response) override;
  grpc::Status StreamClassify(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::ClassifyResponse, v1::ClassifyRequest>* stream) override;
  grpc::Status EmbedImages(grpc::ServerContext* ctx, const v1::EmbedImagesRequest* request,
                           v1::EmbedImagesResponse* response) override;
  grpc::Status EmbedTexts(grpc::ServerContext* ctx, const v1::EmbedTextsRequest* request,
                          v1::EmbedTextsResponse* response) override;
  grpc::Status GetServerInfo(grpc::ServerContext* ctx, const v1::GetServerInfoRequest* request,
                             v1::ServerInfo* response) override;

 private:
  absl::Status DoClassify(grpc::ServerContext* ctx, absl::Time deadline,
                          const v1::ClassifyRequest& request, v1::ClassifyResponse* response);

  ServerEnv* env_;
};

// Decodes one request image into RGB, enforcing the pixel limit. Errors are
// INVALID_ARGUMENT (IMAGE_DECODE_FAILED, IMAGE_TOO_LARGE, INVALID_RAW_IMAGE)
// naming `field`, or UNIMPLEMENTED (URI_INPUT_DISABLED).
absl::StatusOr<engine::Image> DecodeRequestImage(const v1::Image& image, const Limits& limits,
                                                 const std::string& field);

}  // namespace provp::server
