// Implementation of class_set_service.h.
#include "server/class_set_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/status_macros.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.ClassSetService";
constexpr char kType[] = "provp.v1.ClassSet";

absl::StatusOr<v1::ClassSet> Fetch(ServerEnv* env, const std::string& id) {
  auto r = env->store->Get(store::Kind::kClassSet, id);
  if (!r.ok()) {
    if (r.status().code() == absl::StatusCode::kNotFound) return NotFound(kType, "classSets/" + id);
    return r.status();
  }
  v1::ClassSet cs;
  if (!cs.ParseFromString(r->data)) return absl::DataLossError("corrupt class set record " + id);
  return cs;
}

}  // namespace

grpc::Status ClassSetServiceImpl::CreateClassSet(grpc::ServerContext* ctx,
                                                 const v1::CreateClassSetRequest* req,
                                                 v1::ClassSet* resp) {
  Rpc rpc(*env_, ctx, kService, "CreateClassSet", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    const Limits& limits = env_->options.limits;
    RETURN_IF_ERROR(ValidateId(req->class_set_id(), "class_set_id"));
    if (!req->request_id().empty()) {
      ASSIGN_OR_RETURN(auto prior,
                       env_->store->FindByRequestId(store::Kind::kClassSet, req->request_id()));
      if (prior.has_value()) {
        if (!resp->ParseFromString(prior->data)) return absl::DataLossError("corrupt record");
        return absl::OkStatus();
      }
    }
    v1::ClassSet cs = req->class_set();
    std::vector<std::string> names(cs.class_names().begin(), cs.class_names().end());
    std::vector<std::string> templates(cs.templates().begin(), cs.templates().end());
    RETURN_IF_ERROR(
        ValidateNames(names, "class_set.class_names", limits, limits.max_classes_per_request));
    RETURN_IF_ERROR(ValidateTemplates(templates, limits));
    if (static_cast<int>(cs.display_name().size()) > limits.max_name_length) {
      return InvalidArgument("NAME_TOO_LONG", "display_name is too long", "class_set.display_name");
    }
    ASSIGN_OR_RETURN(int64_t count, env_->store->Count(store::Kind::kClassSet, {}));
    if (count >= limits.max_class_sets) {
      return ResourceExhausted(
          "TOO_MANY_CLASS_SETS", "max_class_sets",
          absl::StrCat("the server holds its limit of ", limits.max_class_sets, " class sets"));
    }
    cs.set_name("classSets/" + req->class_set_id());
    cs.set_state(v1::ClassSet::ACTIVE);
    SetTimestamp(absl::Now(), cs.mutable_create_time());
    cs.set_etag(RandomHex(12));
    store::Record r{req->class_set_id(), "ACTIVE", req->request_id(), NowMicros(),
                    cs.SerializeAsString()};
    absl::Status s = env_->store->Insert(store::Kind::kClassSet, r);
    if (s.code() == absl::StatusCode::kAlreadyExists) {
      ErrorDetail d;
      d.resource_type = kType;
      d.resource_name = cs.name();
      return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                       absl::StrCat(cs.name(), " already exists"), d);
    }
    RETURN_IF_ERROR(s);
    *resp = cs;
    return absl::OkStatus();
  });
}

grpc::Status ClassSetServiceImpl::GetClassSet(grpc::ServerContext* ctx,
                                              const v1::GetClassSetRequest* req,
                                              v1::ClassSet* resp) {
  Rpc rpc(*env_, ctx, kService, "GetClassSet", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "classSets", "name"));
    ASSIGN_OR_RETURN(*resp, Fetch(env_, id));
    return absl::OkStatus();
  });
}

grpc::Status ClassSetServiceImpl::ListClassSets(grpc::ServerContext* ctx,
                                                const v1::ListClassSetsRequest* req,
                                                v1::ListClassSetsResponse* resp) {
  Rpc rpc(*env_, ctx, kService, "ListClassSets", "unary", Scope::kClassify);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(RecordPage page, ListRecordPage(*env_->store, store::Kind::kClassSet,
                                                     req->page_size(), req->page_token()));
    for (const std::string& data : page.records) resp->add_class_sets()->ParseFromString(data);
    resp->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status ClassSetServiceImpl::DeleteClassSet(grpc::ServerContext* ctx,
                                                 const v1::DeleteClassSetRequest* req,
                                                 v1::DeleteClassSetResponse*) {
  Rpc rpc(*env_, ctx, kService, "DeleteClassSet", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "classSets", "name"));
    absl::Status s = env_->store->Delete(store::Kind::kClassSet, id);
    if (s.code() == absl::StatusCode::kNotFound) return NotFound(kType, req->name());
    return s;
  });
}

}  // namespace provp::server
