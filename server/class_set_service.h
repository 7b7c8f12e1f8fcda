// provp.v1.ClassSetService adapters over ClassSetRegistry: stored class
// lists (+ templates) that Classify refers to by name. Create/Delete need
// admin, Get/List any key. Thread-safe (state lives in the store).
#pragma once

#include "provp/v1/class_set.pb.h"
#include "server/rpc_service.h"
#include "server/state/class_set_registry.h"

namespace provp::server {

class ClassSetServiceImpl final : public RpcService {
 public:
  ClassSetServiceImpl(RpcEnv env, ClassSetRegistry* class_sets);

 private:
  absl::Status CreateClassSet(Rpc& rpc, const v1::CreateClassSetRequest* req, v1::ClassSet* resp);
  absl::Status GetClassSet(Rpc& rpc, const v1::GetClassSetRequest* req, v1::ClassSet* resp);
  absl::Status ListClassSets(Rpc& rpc, const v1::ListClassSetsRequest* req,
                             v1::ListClassSetsResponse* resp);
  absl::Status DeleteClassSet(Rpc& rpc, const v1::DeleteClassSetRequest* req,
                              v1::DeleteClassSetResponse*);

  ClassSetRegistry* const class_sets_;
};

}  // namespace provp::server
