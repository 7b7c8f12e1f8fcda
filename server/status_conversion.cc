// Implementation of status_conversion.h.
#include "server/status_conversion.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/rpc/status.pb.h"
#include "server/state/errors.h"

namespace provp::server {

grpc::Status ToGrpcStatus(const absl::Status& status, absl::string_view request_id) {
  if (status.ok()) return grpc::Status::OK;
  absl::Status shown = status;
  if (status.code() == absl::StatusCode::kInternal || status.code() == absl::StatusCode::kUnknown) {
    // Internal messages may hold paths or library detail; the log has them.
    shown = WithReason(absl::Status(absl::StatusCode::kInternal,
                                    absl::StrCat("internal error (request id ", request_id, ")")),
                       ReasonOf(status));
  }
  google::rpc::Status rpc = ToRpcStatus(shown);
  return grpc::Status(static_cast<grpc::StatusCode>(shown.code()), std::string(shown.message()),
                      rpc.SerializeAsString());
}

}  // namespace provp::server
