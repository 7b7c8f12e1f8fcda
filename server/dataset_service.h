// provp.v1.DatasetService adapters over DatasetRegistry: client-streamed
// uploads, server-side directories registered in place, Get/List/Delete.
// Scope: admin. Thread-safe.
#pragma once

#include <string>

#include "provp/v1/dataset.pb.h"
#include "server/rpc_service.h"
#include "server/state/dataset_registry.h"

namespace provp::server {

class DatasetServiceImpl final : public RpcService {
 public:
  DatasetServiceImpl(RpcEnv env, DatasetRegistry* datasets);

 private:
  absl::Status UploadDataset(Rpc& rpc, RequestReader<v1::UploadDatasetRequest>& reader,
                             v1::Dataset* resp);
  absl::Status RegisterDataset(Rpc& rpc, const v1::RegisterDatasetRequest* req, v1::Dataset* resp);
  absl::Status GetDataset(Rpc& rpc, const v1::GetDatasetRequest* req, v1::Dataset* resp);
  absl::Status ListDatasets(Rpc& rpc, const v1::ListDatasetsRequest* req,
                            v1::ListDatasetsResponse* resp);
  absl::Status DeleteDataset(Rpc& rpc, const v1::DeleteDatasetRequest* req,
                             v1::DeleteDatasetResponse*);

  DatasetRegistry* const datasets_;
};

}  // namespace provp::server
