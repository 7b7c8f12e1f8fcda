// provp.v1.DatasetService: client-streamed uploads validated on arrival and
// stored under <data_dir>/datasets/<id>/ (images + manifest.json in the
// provp_data manifest format), server-side directories registered in place
// (CoOp or class-per-folder layouts, restricted to --dataset-root folders),
// and Get/List/Delete. Scope: admin. Thread-safe.
#pragma once

#include <string>

#include "provp/v1/dataset.grpc.pb.h"
#include "server/rpc.h"

namespace provp::server {

class DatasetServiceImpl final : public v1::DatasetService::Service {
 public:
  explicit DatasetServiceImpl(ServerEnv* env) : env_(env) {}

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
  absl::Status DoUpload(grpc::ServerReader<v1::UploadDatasetRequest>* reader, v1::Dataset* resp);
  ServerEnv* env_;
};

// Where a dataset's manifest lives.
std::string DatasetManifestPath(const ServerOptions& options, const std::string& id);
// Reads a stored dataset record; NOT_FOUND with ResourceInfo when absent.
absl::StatusOr<v1::Dataset> FetchDataset(ServerEnv* env, const std::string& id);

}  // namespace provp::server
