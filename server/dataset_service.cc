// Implementation of dataset_service.h.
#include "server/dataset_service.h"

#include "core/util/status_macros.h"
#include "server/state/resource_names.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.DatasetService";

}  // namespace

grpc::Status DatasetServiceImpl::UploadDataset(grpc::ServerContext* ctx,
                                               grpc::ServerReader<v1::UploadDatasetRequest>* reader,
                                               v1::Dataset* resp) {
  Rpc rpc(env_, ctx, kService, "UploadDataset", "client_stream", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    absl::StatusOr<v1::Dataset> uploaded =
        datasets_->Upload([reader](v1::UploadDatasetRequest* msg) { return reader->Read(msg); });
    env_.metrics.uploads->WithLabels({"dataset", uploaded.ok() ? "ok" : "error"}).Increment();
    RETURN_IF_ERROR(uploaded.status());
    *resp = *std::move(uploaded);
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::RegisterDataset(grpc::ServerContext* ctx,
                                                 const v1::RegisterDatasetRequest* req,
                                                 v1::Dataset* resp) {
  Rpc rpc(env_, ctx, kService, "RegisterDataset", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, datasets_->Register(*req));
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::GetDataset(grpc::ServerContext* ctx,
                                            const v1::GetDatasetRequest* req, v1::Dataset* resp) {
  Rpc rpc(env_, ctx, kService, "GetDataset", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kDatasets, "name"));
    ASSIGN_OR_RETURN(*resp, datasets_->Get(id));
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::ListDatasets(grpc::ServerContext* ctx,
                                              const v1::ListDatasetsRequest* req,
                                              v1::ListDatasetsResponse* resp) {
  Rpc rpc(env_, ctx, kService, "ListDatasets", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto page, datasets_->List(req->page_size(), req->page_token()));
    for (v1::Dataset& ds : page.items) *resp->add_datasets() = std::move(ds);
    resp->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status DatasetServiceImpl::DeleteDataset(grpc::ServerContext* ctx,
                                               const v1::DeleteDatasetRequest* req,
                                               v1::DeleteDatasetResponse*) {
  Rpc rpc(env_, ctx, kService, "DeleteDataset", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kDatasets, "name"));
    return datasets_->Delete(id);
  });
}

}  // namespace provp::server
