// provp.v1.ClassificationService adapters: Classify / StreamClassify /
// EmbedImages / EmbedTexts / GetServerInfo parse the call, hand it to the
// server core's Classifier (server/state/classifier.h) and send its answer.
// Thread-safe; one instance serves all calls.
#pragma once

#include "provp/v1/classification.pb.h"
#include "server/rpc_service.h"
#include "server/state/classifier.h"

namespace provp::server {

class ClassificationServiceImpl final : public RpcService {
 public:
  ClassificationServiceImpl(RpcEnv env, Classifier* classifier);

 private:
  absl::Status Classify(Rpc& rpc, const v1::ClassifyRequest* request,
                        v1::ClassifyResponse* response);
  absl::Status StreamClassify(
      Rpc& rpc, RequestReader<v1::ClassifyRequest>& reader,
      grpc::ServerReaderWriter<v1::ClassifyResponse, grpc::ByteBuffer>* stream);
  absl::Status EmbedImages(Rpc& rpc, const v1::EmbedImagesRequest* req,
                           v1::EmbedImagesResponse* resp);
  absl::Status EmbedTexts(Rpc& rpc, const v1::EmbedTextsRequest* req, v1::EmbedTextsResponse* resp);
  absl::Status GetServerInfo(Rpc& rpc, const v1::GetServerInfoRequest*, v1::ServerInfo* resp);

  // A Classify, StreamClassify or Embed* message that does not parse is an
  // invalid inference request: provp_requests_rejected_total{invalid}.
  void OnMalformedRequest(const std::string& method) override;

  Classifier* const classifier_;
};

}  // namespace provp::server
