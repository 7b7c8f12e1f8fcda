// Datasets on the server: client-streamed uploads validated on arrival and
// stored under <data_dir>/datasets/<id>/ (images + manifest.json in the
// provp_data manifest format), server-side directories registered in place
// (CoOp or class-per-folder layouts, restricted to the dataset roots), and
// their records. Collaborators come in through the constructor and must
// outlive it. Thread-safe (the store is; uploads stage into private
// folders).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/store/store.h"
#include "core/util/clock.h"
#include "provp/v1/dataset.pb.h"
#include "provp/v1/tuning.pb.h"
#include "server/state/limits.h"
#include "server/state/logging.h"
#include "server/state/records.h"

namespace provp::server {

struct DatasetRegistryOptions {
  // Datasets live in <data_dir>/datasets/.
  std::string data_dir;
  // Server-side folders Register may read from (empty = none).
  std::vector<std::string> dataset_roots;
  Limits limits;
};

class DatasetRegistry {
 public:
  // Reads the next message of an upload stream; false at its end, an
  // error (a message that does not parse) ends the upload with it.
  using ReadUploadMessage = std::function<absl::StatusOr<bool>(v1::UploadDatasetRequest*)>;

  DatasetRegistry(store::Store* store, const util::Clock* clock, Logger* logger,
                  DatasetRegistryOptions options);

  // Metadata first, then labelled images. The same request id returns the
  // dataset it created (the rest of the stream is drained).
  absl::StatusOr<v1::Dataset> Upload(const ReadUploadMessage& read);
  absl::StatusOr<v1::Dataset> Register(const v1::RegisterDatasetRequest& request);
  absl::StatusOr<v1::Dataset> Get(const std::string& id) const;
  absl::StatusOr<RecordPage<v1::Dataset>> List(int32_t page_size,
                                               absl::string_view page_token) const;
  // FAILED_PRECONDITION (DATASET_IN_USE) while an unfinished job uses it.
  absl::Status Delete(const std::string& id);

  // Where a dataset's manifest lives.
  std::string ManifestPath(const std::string& id) const;

 private:
  absl::Status CheckCapacity(const std::string& id) const;
  absl::Status Save(const v1::Dataset& ds, const std::string& id, const std::string& request_id);

  // Constant after construction.
  const RecordTable<v1::Dataset> table_;
  const RecordTable<v1::TuningJob> jobs_;
  const util::Clock* const clock_;
  Logger* const logger_;
  const DatasetRegistryOptions options_;
};

}  // namespace provp::server
