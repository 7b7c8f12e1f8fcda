// Implementation of errors.h: reasons and details ride on absl::Status
// payloads under private type URLs until ToGrpcStatus packs them.
#include "server/state/errors.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"

namespace provp::server {
namespace {

constexpr char kReasonUrl[] = "provp/reason";
constexpr char kFieldUrl[] = "provp/field";
constexpr char kResourceTypeUrl[] = "provp/resource_type";
constexpr char kResourceNameUrl[] = "provp/resource_name";
constexpr char kQuotaUrl[] = "provp/quota";
constexpr char kPreconditionUrl[] = "provp/precondition";
constexpr char kRetryUrl[] = "provp/retry_ms";

std::string Payload(const absl::Status& s, const char* url) {
  auto p = s.GetPayload(url);
  return p ? std::string(*p) : std::string();
}

void SetIf(absl::Status& s, const char* url, const std::string& v) {
  if (!v.empty()) s.SetPayload(url, absl::Cord(v));
}

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
  absl::Status s(code, message);
  SetIf(s, kReasonUrl, std::string(reason));
  SetIf(s, kFieldUrl, d.field);
  SetIf(s, kResourceTypeUrl, d.resource_type);
  SetIf(s, kResourceNameUrl, d.resource_name);
  SetIf(s, kQuotaUrl, d.quota_subject);
  SetIf(s, kPreconditionUrl, d.precondition_type);
  if (d.retry_after_ms > 0) SetIf(s, kRetryUrl, std::to_string(d.retry_after_ms));
  return s;
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
  if (!status.ok() && !status.GetPayload(kReasonUrl)) {
    status.SetPayload(kReasonUrl, absl::Cord(std::string(reason)));
  }
  return status;
}

std::string ReasonOf(const absl::Status& status) {
  if (status.ok()) return "";
  std::string r = Payload(status, kReasonUrl);
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
  std::string field = Payload(status, kFieldUrl);
  if (!field.empty()) (*info.mutable_metadata())["field"] = field;
  out.add_details()->PackFrom(info);
  if (!field.empty()) {
    google::rpc::BadRequest br;
    auto* v = br.add_field_violations();
    v->set_field(field);
    v->set_description(std::string(status.message()));
    out.add_details()->PackFrom(br);
  }
  std::string rname = Payload(status, kResourceNameUrl);
  std::string rtype = Payload(status, kResourceTypeUrl);
  std::string precondition = Payload(status, kPreconditionUrl);
  if (!precondition.empty()) {
    google::rpc::PreconditionFailure pf;
    auto* v = pf.add_violations();
    v->set_type(precondition);
    v->set_subject(rname);
    v->set_description(std::string(status.message()));
    out.add_details()->PackFrom(pf);
  } else if (!rname.empty() || !rtype.empty()) {
    google::rpc::ResourceInfo ri;
    ri.set_resource_type(rtype);
    ri.set_resource_name(rname);
    ri.set_description(std::string(status.message()));
    out.add_details()->PackFrom(ri);
  }
  std::string quota = Payload(status, kQuotaUrl);
  if (!quota.empty()) {
    google::rpc::QuotaFailure qf;
    auto* v = qf.add_violations();
    v->set_subject(quota);
    v->set_description(std::string(status.message()));
    out.add_details()->PackFrom(qf);
  }
  int64_t retry_ms = 0;
  if (absl::SimpleAtoi(Payload(status, kRetryUrl), &retry_ms) && retry_ms > 0) {
    google::rpc::RetryInfo ri;
    ri.mutable_retry_delay()->set_seconds(retry_ms / 1000);
    ri.mutable_retry_delay()->set_nanos(static_cast<int32_t>((retry_ms % 1000) * 1000000));
    out.add_details()->PackFrom(ri);
  }
  return out;
}

}  // namespace provp::server
