// Implementation of class_set_service.h.
#include "server/class_set_service.h"

#include "core/util/status_macros.h"
#include "server/state/resource_names.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.ClassSetService";

}  // namespace

grpc::Status ClassSetServiceImpl::CreateClassSet(grpc::ServerContext* ctx,
                                                 const v1::CreateClassSetRequest* req,
                                                 v1::ClassSet* resp) {
  Rpc rpc(env_, ctx, kService, "CreateClassSet", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, class_sets_->Create(*req));
    return absl::OkStatus();
  });
}

grpc::Status ClassSetServiceImpl::GetClassSet(grpc::ServerContext* ctx,
                                              const v1::GetClassSetRequest* req,
                                              v1::ClassSet* resp) {
  Rpc rpc(env_, ctx, kService, "GetClassSet", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kClassSets, "name"));
    ASSIGN_OR_RETURN(*resp, class_sets_->Get(id));
    return absl::OkStatus();
  });
}

grpc::Status ClassSetServiceImpl::ListClassSets(grpc::ServerContext* ctx,
                                                const v1::ListClassSetsRequest* req,
                                                v1::ListClassSetsResponse* resp) {
  Rpc rpc(env_, ctx, kService, "ListClassSets", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto page, class_sets_->List(req->page_size(), req->page_token()));
    for (v1::ClassSet& cs : page.items) *resp->add_class_sets() = std::move(cs);
    resp->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status ClassSetServiceImpl::DeleteClassSet(grpc::ServerContext* ctx,
                                                 const v1::DeleteClassSetRequest* req,
                                                 v1::DeleteClassSetResponse*) {
  Rpc rpc(env_, ctx, kService, "DeleteClassSet", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kClassSets, "name"));
    return class_sets_->Delete(id);
  });
}

}  // namespace provp::server
