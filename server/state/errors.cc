// Implementation of errors.h.
#include "server/state/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/error_reason.h"
#include "google/rpc/error_details.pb.h"

namespace provp::server {
namespace {

constexpr char kTypeUrlPrefix[] = "type.googleapis.com/";

}  // namespace

const char* CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "OK";
    case absl::StatusCode::kCancelled:
      return "CANCELLED";
    case absl::StatusCode::kUnknown:
      return "UNKNOWN";
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case absl::StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case absl::StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case absl::StatusCode::kAborted:
      return "ABORTED";
    case absl::StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case absl::StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case absl::StatusCode::kInternal:
      return "INTERNAL";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDataLoss:
      return "DATA_LOSS";
    case absl::StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

const char* GoCodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "OK";
    case absl::StatusCode::kCancelled:
      return "Canceled";
    case absl::StatusCode::kUnknown:
      return "Unknown";
    case absl::StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case absl::StatusCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case absl::StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case absl::StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case absl::StatusCode::kAborted:
      return "Aborted";
    case absl::StatusCode::kOutOfRange:
      return "OutOfRange";
    case absl::StatusCode::kUnimplemented:
      return "Unimplemented";
    case absl::StatusCode::kInternal:
      return "Internal";
    case absl::StatusCode::kUnavailable:
      return "Unavailable";
    case absl::StatusCode::kDataLoss:
      return "DataLoss";
    case absl::StatusCode::kUnauthenticated:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

absl::Status MakeError(absl::StatusCode code, absl::string_view reason, absl::string_view message,
                       const ErrorDetail& d) {
  absl::Status s = util::WithErrorReason(absl::Status(code, message), reason);
  if (!d.field.empty()) {
    google::rpc::BadRequest br;
    auto* v = br.add_field_violations();
    v->set_field(d.field);
    v->set_description(std::string(message));
    AddDetail(s, br);
  }
  if (!d.precondition_type.empty()) {
    google::rpc::PreconditionFailure pf;
    auto* v = pf.add_violations();
    v->set_type(d.precondition_type);
    v->set_subject(d.resource_name);
    v->set_description(std::string(message));
    AddDetail(s, pf);
  } else if (!d.resource_name.empty() || !d.resource_type.empty()) {
    google::rpc::ResourceInfo ri;
    ri.set_resource_type(d.resource_type);
    ri.set_resource_name(d.resource_name);
    ri.set_description(std::string(message));
    AddDetail(s, ri);
  }
  if (!d.quota_subject.empty()) {
    google::rpc::QuotaFailure qf;
    auto* v = qf.add_violations();
    v->set_subject(d.quota_subject);
    v->set_description(std::string(message));
    AddDetail(s, qf);
  }
  if (d.retry_after_ms > 0) {
    google::rpc::RetryInfo ri;
    ri.mutable_retry_delay()->set_seconds(d.retry_after_ms / 1000);
    ri.mutable_retry_delay()->set_nanos(static_cast<int32_t>((d.retry_after_ms % 1000) * 1000000));
    AddDetail(s, ri);
  }
  return s;
}

void AddDetail(absl::Status& status, const google::protobuf::Message& detail) {
  if (status.ok()) return;  // OK statuses hold no payloads
  status.SetPayload(absl::StrCat(kTypeUrlPrefix, detail.GetDescriptor()->full_name()),
                    absl::Cord(detail.SerializeAsString()));
}

absl::Status InvalidArgument(absl::string_view reason, absl::string_view message,
                             absl::string_view field) {
  ErrorDetail d;
  d.field = std::string(field);
  return MakeError(absl::StatusCode::kInvalidArgument, reason, message, d);
}

absl::Status NotFound(absl::string_view resource_type, absl::string_view resource_name) {
  ErrorDetail d;
  d.resource_type = std::string(resource_type);
  d.resource_name = std::string(resource_name);
  return MakeError(absl::StatusCode::kNotFound, "NOT_FOUND",
                   absl::StrCat(resource_name, " not found"), d);
}

absl::Status ResourceExhausted(absl::string_view reason, absl::string_view subject,
                               absl::string_view message, int64_t retry_after_ms) {
  ErrorDetail d;
  d.quota_subject = std::string(subject);
  d.retry_after_ms = retry_after_ms;
  return MakeError(absl::StatusCode::kResourceExhausted, reason, message, d);
}

absl::Status FailedPrecondition(absl::string_view type, absl::string_view subject,
                                absl::string_view message) {
  ErrorDetail d;
  d.precondition_type = std::string(type);
  d.resource_name = std::string(subject);
  return MakeError(absl::StatusCode::kFailedPrecondition, type, message, d);
}

absl::Status WithReason(absl::Status status, absl::string_view reason) {
  if (util::ErrorReasonOf(status).empty()) return util::WithErrorReason(std::move(status), reason);
  return status;
}

std::string ReasonOf(const absl::Status& status) {
  if (status.ok()) return "";
  std::string r = util::ErrorReasonOf(status);
  if (!r.empty()) return r;
  if (status.code() == absl::StatusCode::kInternal) return "INTERNAL_ERROR";
  return CodeName(status.code());
}

google::rpc::Status ToRpcStatus(const absl::Status& status) {
  google::rpc::Status out;
  out.set_code(static_cast<int>(status.code()));
  out.set_message(std::string(status.message()));
  if (status.ok()) return out;
  google::rpc::ErrorInfo info;
  info.set_reason(ReasonOf(status));
  info.set_domain(kErrorDomain);
  if (auto br = DetailOf<google::rpc::BadRequest>(status); br && br->field_violations_size() > 0) {
    (*info.mutable_metadata())["field"] = br->field_violations(0).field();
  }
  out.add_details()->PackFrom(info);
  // Every typed detail, as the Any it already is (type URL + bytes).
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    if (!absl::StartsWith(url, kTypeUrlPrefix) || url == util::kErrorReasonUrl) return;
    google::protobuf::Any* any = out.add_details();
    any->set_type_url(std::string(url));
    any->set_value(std::string(payload));
  });
  return out;
}

}  // namespace provp::server
