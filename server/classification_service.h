// provp.v1.ClassificationService adapters: Classify / StreamClassify /
// EmbedImages / EmbedTexts / GetServerInfo parse the call, hand it to the
// server core's Classifier (server/state/classifier.h) and send its answer.
// Thread-safe; one instance serves all calls.
#pragma once

#include "provp/v1/classification.grpc.pb.h"
#include "server/rpc.h"
#include "server/state/classifier.h"

namespace provp::server {

class ClassificationServiceImpl final : public v1::ClassificationService::Service {
 public:
  ClassificationServiceImpl(RpcEnv env, Classifier* classifier)
      : env_(env), classifier_(classifier) {}

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
  const RpcEnv env_;
  Classifier* const classifier_;
};

}  // namespace provp::server
