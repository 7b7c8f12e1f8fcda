// provp.v1.PromptSetService adapters over PromptSetRegistry: List/Get (any key),
// Load/Unload/Delete and chunked Import/Export (admin). Thread-safe.
#pragma once

#include "provp/v1/prompt_set.pb.h"
#include "server/rpc_service.h"
#include "server/state/prompt_set_registry.h"

namespace provp::server {

class PromptSetServiceImpl final : public RpcService {
 public:
  PromptSetServiceImpl(RpcEnv env, PromptSetRegistry* prompt_sets);

 private:
  absl::Status ListPromptSets(Rpc& rpc, const v1::ListPromptSetsRequest* req,
                              v1::ListPromptSetsResponse* resp);
  absl::Status GetPromptSet(Rpc& rpc, const v1::GetPromptSetRequest* req, v1::PromptSet* resp);
  absl::Status DeletePromptSet(Rpc& rpc, const v1::DeletePromptSetRequest* req,
                               v1::DeletePromptSetResponse*);
  absl::Status LoadPromptSet(Rpc& rpc, const v1::LoadPromptSetRequest* req, v1::PromptSet* resp);
  absl::Status UnloadPromptSet(Rpc& rpc, const v1::UnloadPromptSetRequest* req,
                               v1::PromptSet* resp);
  absl::Status ImportPromptSet(Rpc& rpc, RequestReader<v1::ImportPromptSetRequest>& reader,
                               v1::PromptSet* resp);
  absl::Status ExportPromptSet(Rpc& rpc, const v1::ExportPromptSetRequest* req,
                               grpc::ServerWriter<v1::ExportPromptSetResponse>* writer);

  PromptSetRegistry* const prompt_sets_;
};

}  // namespace provp::server
