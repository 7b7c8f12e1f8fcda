// The one mapping from the server core's absl::Status to gRPC: the code is a
// cast (absl and gRPC share google.rpc.Code), the reason and details travel
// as a serialized google.rpc.Status in the trailer (grpc-status-details-bin).
// INTERNAL/UNKNOWN messages are replaced by a generic text plus the request
// id; the real message goes to the log. Pure functions; thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace provp::server {

grpc::Status ToGrpcStatus(const absl::Status& status, absl::string_view request_id = "");

}  // namespace provp::server
