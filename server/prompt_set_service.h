// provp.v1.PromptSetService adapters over PromptSetRegistry: List/Get (any key),
// Load/Unload/Delete and chunked Import/Export (admin). Thread-safe.
#pragma once

#include "provp/v1/prompt_set.grpc.pb.h"
#include "server/rpc.h"
#include "server/state/prompt_set_registry.h"

namespace provp::server {

class PromptSetServiceImpl final : public v1::PromptSetService::Service {
 public:
  PromptSetServiceImpl(RpcEnv env, PromptSetRegistry* prompt_sets)
      : env_(env), prompt_sets_(prompt_sets) {}

  grpc::Status ListPromptSets(grpc::ServerContext* ctx, const v1::ListPromptSetsRequest* req,
                              v1::ListPromptSetsResponse* resp) override;
  grpc::Status GetPromptSet(grpc::ServerContext* ctx, const v1::GetPromptSetRequest* req,
                            v1::PromptSet* resp) override;
  grpc::Status DeletePromptSet(grpc::ServerContext* ctx, const v1::DeletePromptSetRequest* req,
                               v1::DeletePromptSetResponse* resp) override;
  grpc::Status LoadPromptSet(grpc::ServerContext* ctx, const v1::LoadPromptSetRequest* req,
                             v1::PromptSet* resp) override;
  grpc::Status UnloadPromptSet(grpc::ServerContext* ctx, const v1::UnloadPromptSetRequest* req,
                               v1::PromptSet* resp) override;
  grpc::Status ImportPromptSet(grpc::ServerContext* ctx,
                               grpc::ServerReader<v1::ImportPromptSetRequest>* reader,
                               v1::PromptSet* resp) override;
  grpc::Status ExportPromptSet(grpc::ServerContext* ctx, const v1::ExportPromptSetRequest* req,
                               grpc::ServerWriter<v1::ExportPromptSetResponse>* writer) override;

 private:
  const RpcEnv env_;
  PromptSetRegistry* const prompt_sets_;
};

}  // namespace provp::server
