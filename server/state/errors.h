// The server's error model (API-GUIDE 3.3): the server core builds
// absl::Status values that carry an UPPER_SNAKE_CASE reason and optional
// detail (field, resource, quota subject, retry delay) as payloads, set
// where the error is made; ToRpcStatus turns one into a google.rpc.Status
// (ErrorInfo always; BadRequest, ResourceInfo, QuotaFailure,
// PreconditionFailure, RetryInfo as applicable), which job records, per-item
// errors and the gRPC edge (server/status_conversion.h) carry.
// No grpcpp here. Pure functions; thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/rpc/status.pb.h"

namespace provp::server {

// ErrorInfo.domain of every provp error.
inline constexpr char kErrorDomain[] = "provp.v1";

// Extra detail of an error; empty fields are left out.
struct ErrorDetail {
  // BadRequest field path, e.g. "images[3].encoded".
  std::string field;
  // ResourceInfo: type ("provp.v1.PromptSet") and name ("promptSets/x").
  std::string resource_type;
  std::string resource_name;
  // QuotaFailure subject, e.g. "max_images_per_request".
  std::string quota_subject;
  // PreconditionFailure type, e.g. "PROMPT_SET_NOT_LOADED".
  std::string precondition_type;
  // RetryInfo delay in milliseconds (> 0 to attach).
  int64_t retry_after_ms = 0;
};

// An error with a reason and detail.
absl::Status MakeError(absl::StatusCode code, absl::string_view reason, absl::string_view message,
                       const ErrorDetail& detail = {});

// Shorthands.
absl::Status InvalidArgument(absl::string_view reason, absl::string_view message,
                             absl::string_view field = "");
absl::Status NotFound(absl::string_view resource_type, absl::string_view resource_name);
absl::Status ResourceExhausted(absl::string_view reason, absl::string_view subject,
                               absl::string_view message, int64_t retry_after_ms = 0);
absl::Status FailedPrecondition(absl::string_view type, absl::string_view subject,
                                absl::string_view message);

// Adds a reason to a status that has none (keeps an existing one).
absl::Status WithReason(absl::Status status, absl::string_view reason);

// The reason of a status: its payload, or a default derived from the code
// ("INVALID_ARGUMENT", ...). "" for OK.
std::string ReasonOf(const absl::Status& status);

// google.rpc.Status for per-item errors, job records and the trailer.
google::rpc::Status ToRpcStatus(const absl::Status& status);

// "OK", "INVALID_ARGUMENT", ... (gRPC code names for logs).
const char* CodeName(absl::StatusCode code);
// "OK", "InvalidArgument", "Canceled", ... (the Go spelling the
// grpc-ecosystem interceptors use in grpc_code labels).
const char* GoCodeName(absl::StatusCode code);

}  // namespace provp::server
