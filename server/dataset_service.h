// provp.v1.DatasetService adapters over DatasetRegistry: client-streamed
// uploads, server-side directories registered in place, Get/List/Delete.
// Scope: admin. Thread-safe.
#pragma once

#include <string>

#include "provp/v1/dataset.grpc.pb.h"
#include "server/rpc.h"
#include "server/state/dataset_registry.h"

namespace provp::server {

class DatasetServiceImpl final : public v1::DatasetService::Service {
 public:
  DatasetServiceImpl(RpcEnv env, DatasetRegistry* datasets) : env_(env), datasets_(datasets) {}

  grpc::Status UploadDataset(grpc::ServerContext* ctx,
                             grpc::ServerReader<v1::UploadDatasetRequest>* reader,
                             v1::Dataset* resp) override;
  grpc::Status RegisterDataset(grpc::ServerContext* ctx, const v1::RegisterDatasetRequest* req,
                               v1::Dataset* resp) override;
  grpc::Status GetDataset(grpc::ServerContext* ctx, const v1::GetDatasetRequest* req,
                          v1::Dataset* resp) override;
  grpc::Status ListDatasets(grpc::ServerContext* ctx, const v1::ListDatasetsRequest* req,
                            v1::ListDatasetsResponse* resp) override;
  grpc::Status DeleteDataset(grpc::ServerContext* ctx, const v1::DeleteDatasetRequest* req,
                             v1::DeleteDatasetResponse* resp) override;

 private:
  const RpcEnv env_;
  DatasetRegistry* const datasets_;
};

}  // namespace provp::server
