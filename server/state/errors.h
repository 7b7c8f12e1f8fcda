// The server's error model (API-GUIDE 3.3). An error carries, as absl::Status
// payloads set where it is made:
//  - its UPPER_SNAKE_CASE reason (core/util/error_reason.h, so the core
//    libraries below the server can set one too), and
//  - typed google.rpc details (BadRequest, ResourceInfo, QuotaFailure,
//    PreconditionFailure, RetryInfo), each under its own type URL
//    ("type.googleapis.com/google.rpc.BadRequest") with the serialized
//    message as the value - exactly an Any's two fields.
// ToRpcStatus turns one into a google.rpc.Status (ErrorInfo{reason, domain}
// first, then the details in the order they were attached), which job
// records, per-item errors and the gRPC edge (server/status_conversion.h)
// carry. Nothing here reads the message text. No grpcpp here. Pure
// functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/rpc/status.pb.h"

namespace provp::server {

// ErrorInfo.domain of every provp error.
inline constexpr char kErrorDomain[] = "provp.v1";

// Extra detail of an error for MakeError; empty fields are left out.
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

// Attaches a typed google.rpc detail (any message; its full name makes the
// type URL). A second detail of the same type replaces the first.
void AddDetail(absl::Status& status, const google::protobuf::Message& detail);

// The detail of type T on `status`, if any.
template <typename T>
std::optional<T> DetailOf(const absl::Status& status) {
  auto payload =
      status.GetPayload(absl::StrCat("type.googleapis.com/", T::descriptor()->full_name()));
  if (!payload) return std::nullopt;
  T detail;
  if (!detail.ParseFromString(std::string(*payload))) return std::nullopt;
  return detail;
}

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
