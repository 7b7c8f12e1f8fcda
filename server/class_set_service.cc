// Implementation of class_set_service.h.
#include "server/class_set_service.h"

#include "core/util/status_macros.h"
#include "server/state/resource_names.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.ClassSetService";

}  // namespace

ClassSetServiceImpl::ClassSetServiceImpl(RpcEnv env, ClassSetRegistry* class_sets)
    : RpcService(env, kService), class_sets_(class_sets) {
  AddUnary("CreateClassSet", Scope::kAdmin, &ClassSetServiceImpl::CreateClassSet);
  AddUnary("GetClassSet", Scope::kClassify, &ClassSetServiceImpl::GetClassSet);
  AddUnary("ListClassSets", Scope::kClassify, &ClassSetServiceImpl::ListClassSets);
  AddUnary("DeleteClassSet", Scope::kAdmin, &ClassSetServiceImpl::DeleteClassSet);
}

absl::Status ClassSetServiceImpl::CreateClassSet(Rpc& rpc, const v1::CreateClassSetRequest* req,
                                                 v1::ClassSet* resp) {
  ASSIGN_OR_RETURN(*resp, class_sets_->Create(*req));
  return absl::OkStatus();
}

absl::Status ClassSetServiceImpl::GetClassSet(Rpc& rpc, const v1::GetClassSetRequest* req,
                                              v1::ClassSet* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kClassSets, "name"));
  ASSIGN_OR_RETURN(*resp, class_sets_->Get(id));
  return absl::OkStatus();
}

absl::Status ClassSetServiceImpl::ListClassSets(Rpc& rpc, const v1::ListClassSetsRequest* req,
                                                v1::ListClassSetsResponse* resp) {
  ASSIGN_OR_RETURN(auto page, class_sets_->List(req->page_size(), req->page_token()));
  for (v1::ClassSet& cs : page.items) *resp->add_class_sets() = std::move(cs);
  resp->set_next_page_token(page.next_page_token);
  return absl::OkStatus();
}

absl::Status ClassSetServiceImpl::DeleteClassSet(Rpc& rpc, const v1::DeleteClassSetRequest* req,
                                                 v1::DeleteClassSetResponse*) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kClassSets, "name"));
  return class_sets_->Delete(id);
}

}  // namespace provp::server
