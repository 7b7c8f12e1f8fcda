// provp.v1.ClassSetService adapters over ClassSetRegistry: stored class
// lists (+ templates) that Classify refers to by name. Create/Delete need
// admin, Get/List any key. Thread-safe (state lives in the store).
#pragma once

#include "provp/v1/class_set.grpc.pb.h"
#include "server/rpc.h"
#include "server/state/class_set_registry.h"

namespace provp::server {

class ClassSetServiceImpl final : public v1::ClassSetService::Service {
 public:
  ClassSetServiceImpl(RpcEnv env, ClassSetRegistry* class_sets)
      : env_(env), class_sets_(class_sets) {}

  grpc::Status CreateClassSet(grpc::ServerContext* ctx, const v1::CreateClassSetRequest* req,
                              v1::ClassSet* resp) override;
  grpc::Status GetClassSet(grpc::ServerContext* ctx, const v1::GetClassSetRequest* req,
                           v1::ClassSet* resp) override;
  grpc::Status ListClassSets(grpc::ServerContext* ctx, const v1::ListClassSetsRequest* req,
                             v1::ListClassSetsResponse* resp) override;
  grpc::Status DeleteClassSet(grpc::ServerContext* ctx, const v1::DeleteClassSetRequest* req,
                              v1::DeleteClassSetResponse* resp) override;

 private:
  const RpcEnv env_;
  ClassSetRegistry* const class_sets_;
};

}  // namespace provp::server
