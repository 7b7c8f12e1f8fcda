// Implementation of dataset_service.h.
#include "server/dataset_service.h"

#include "core/util/status_macros.h"
#include "server/state/resource_names.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.DatasetService";

}  // namespace

DatasetServiceImpl::DatasetServiceImpl(RpcEnv env, DatasetRegistry* datasets)
    : RpcService(env, kService), datasets_(datasets) {
  AddClientStream("UploadDataset", Scope::kAdmin, &DatasetServiceImpl::UploadDataset);
  AddUnary("RegisterDataset", Scope::kAdmin, &DatasetServiceImpl::RegisterDataset);
  AddUnary("GetDataset", Scope::kAdmin, &DatasetServiceImpl::GetDataset);
  AddUnary("ListDatasets", Scope::kAdmin, &DatasetServiceImpl::ListDatasets);
  AddUnary("DeleteDataset", Scope::kAdmin, &DatasetServiceImpl::DeleteDataset);
}

absl::Status DatasetServiceImpl::UploadDataset(Rpc& rpc,
                                               RequestReader<v1::UploadDatasetRequest>& reader,
                                               v1::Dataset* resp) {
  // A message that does not parse aborts the upload (nothing is stored).
  absl::StatusOr<v1::Dataset> uploaded =
      datasets_->Upload([&reader](v1::UploadDatasetRequest* msg) { return reader.Read(msg); });
  env_.metrics.uploads->WithLabels({"dataset", uploaded.ok() ? "ok" : "error"}).Increment();
  RETURN_IF_ERROR(uploaded.status());
  *resp = *std::move(uploaded);
  return absl::OkStatus();
}

absl::Status DatasetServiceImpl::RegisterDataset(Rpc& rpc, const v1::RegisterDatasetRequest* req,
                                                 v1::Dataset* resp) {
  ASSIGN_OR_RETURN(*resp, datasets_->Register(*req));
  return absl::OkStatus();
}

absl::Status DatasetServiceImpl::GetDataset(Rpc& rpc, const v1::GetDatasetRequest* req,
                                            v1::Dataset* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kDatasets, "name"));
  ASSIGN_OR_RETURN(*resp, datasets_->Get(id));
  return absl::OkStatus();
}

absl::Status DatasetServiceImpl::ListDatasets(Rpc& rpc, const v1::ListDatasetsRequest* req,
                                              v1::ListDatasetsResponse* resp) {
  ASSIGN_OR_RETURN(auto page, datasets_->List(req->page_size(), req->page_token()));
  for (v1::Dataset& ds : page.items) *resp->add_datasets() = std::move(ds);
  resp->set_next_page_token(page.next_page_token);
  return absl::OkStatus();
}

absl::Status DatasetServiceImpl::DeleteDataset(Rpc& rpc, const v1::DeleteDatasetRequest* req,
                                               v1::DeleteDatasetResponse*) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kDatasets, "name"));
  return datasets_->Delete(id);
}

}  // namespace provp::server
