// Implementation of rpc.h.
#include "server/rpc.h"

#include <random>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/status_macros.h"

namespace provp::server {

Rpc::Rpc(ServerEnv& env, grpc::ServerContext* ctx, const char* service, const char* method,
         const char* type, Scope scope)
    : env_(env), ctx_(ctx), service_(service), method_(method), type_(type), start_(absl::Now()) {
  const auto& md = ctx->client_metadata();
  auto rid = md.find("x-request-id");
  if (rid != md.end() && rid->second.size() <= 64) {
    std::string v(rid->second.data(), rid->second.size());
    bool printable = !v.empty();
    for (char c : v) printable &= absl::ascii_isgraph(static_cast<unsigned char>(c));
    if (printable) request_id_ = v;
  }
  if (request_id_.empty()) request_id_ = RandomHex(16);
  ctx->AddInitialMetadata("x-request-id", request_id_);
  if (env_.metrics) env_.metrics->RpcStarted(service_, method_, type_);
  std::string auth;
  auto a = md.find("authorization");
  if (a != md.end()) auth.assign(a->second.data(), a->second.size());
  absl::StatusOr<Principal> p = env_.keys->Authenticate(auth, scope);
  if (!p.ok()) {
    admission_ = p.status();
  } else {
    principal_ = *p;
    if (env_.draining.load()) {
      ErrorDetail d;
      d.retry_after_ms = 1000;
      admission_ =
          MakeError(absl::StatusCode::kUnavailable, "DRAINING", "server is shutting down", d);
    }
  }
}

absl::Time Rpc::deadline() const {
  auto d = ctx_->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

grpc::Status Rpc::Finish(const absl::Status& status, const LogFields& extra) {
  double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  const char* code = CodeName(status.code());
  if (env_.metrics) {
    env_.metrics->RpcHandled(service_, method_, type_, GoCodeName(status.code()), seconds);
  }
  LogFields fields = {{"request_id", request_id_},
                      {"method", absl::StrCat(service_, "/", method_)},
                      {"code", code},
                      {"seconds", absl::StrCat(seconds)},
                      {"principal", principal_.name}};
  if (!status.ok()) {
    fields.emplace_back("reason", ReasonOf(status));
    fields.emplace_back("error", std::string(status.message()));
  }
  fields.insert(fields.end(), extra.begin(), extra.end());
  if (env_.logger) {
    LogLevel level = status.ok()                                    ? LogLevel::kInfo
                     : status.code() == absl::StatusCode::kInternal ? LogLevel::kError
                                                                    : LogLevel::kWarning;
    env_.logger->Log(level, "rpc", fields);
  }
  return ToGrpcStatus(status, request_id_);
}

absl::Status ValidateId(absl::string_view id, absl::string_view field) {
  bool ok =
      !id.empty() && id.size() <= 63 && (absl::ascii_islower(id[0]) || absl::ascii_isdigit(id[0]));
  for (char c : id) {
    ok &= absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_';
  }
  if (!ok) {
    return InvalidArgument("INVALID_ID",
                           absl::StrCat(field, " must match [a-z0-9][a-z0-9-_]{0,62}"), field);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParseName(absl::string_view name, absl::string_view collection,
                                      absl::string_view field) {
  std::string prefix = absl::StrCat(collection, "/");
  if (!absl::StartsWith(name, prefix)) {
    return InvalidArgument("INVALID_NAME",
                           absl::StrCat(field, " must look like '", prefix, "{id}'"), field);
  }
  std::string id(name.substr(prefix.size()));
  absl::Status s = ValidateId(id, field);
  if (!s.ok()) return s;
  return id;
}

absl::Status ValidateNames(const std::vector<std::string>& names, absl::string_view field,
                           const Limits& limits, int max_count) {
  if (names.empty()) {
    return InvalidArgument("EMPTY_CLASS_LIST", absl::StrCat(field, " is empty"), field);
  }
  if (static_cast<int>(names.size()) > max_count) {
    return InvalidArgument(
        "TOO_MANY_CLASSES",
        absl::StrCat(field, " has ", names.size(), " entries; the limit is ", max_count), field);
  }
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string f = absl::StrCat(field, "[", i, "]");
    if (absl::StripAsciiWhitespace(names[i]).empty()) {
      return InvalidArgument("EMPTY_CLASS_NAME", absl::StrCat(f, " is empty"), f);
    }
    if (static_cast<int>(names[i].size()) > limits.max_name_length) {
      return InvalidArgument("NAME_TOO_LONG",
                             absl::StrCat(f, " is longer than ", limits.max_name_length, " bytes"),
                             f);
    }
    if (!seen.insert(names[i]).second) {
      return InvalidArgument("DUPLICATE_CLASS_NAME",
                             absl::StrCat(f, " ('", names[i], "') appears twice"), f);
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTemplates(const std::vector<std::string>& templates, const Limits& limits) {
  if (static_cast<int>(templates.size()) > limits.max_templates) {
    return InvalidArgument("TOO_MANY_TEMPLATES",
                           absl::StrCat("at most ", limits.max_templates, " templates"),
                           "templates");
  }
  for (size_t i = 0; i < templates.size(); ++i) {
    std::string f = absl::StrCat("templates[", i, "]");
    if (templates[i].find("{}") == std::string::npos) {
      return InvalidArgument("INVALID_TEMPLATE", absl::StrCat(f, " has no '{}'"), f);
    }
    if (static_cast<int>(templates[i].size()) > limits.max_name_length) {
      return InvalidArgument("NAME_TOO_LONG",
                             absl::StrCat(f, " is longer than ", limits.max_name_length, " bytes"),
                             f);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParsePageToken(absl::string_view token) {
  if (token.empty()) return 0;
  int64_t offset = 0;
  if (!absl::SimpleAtoi(token, &offset) || offset < 0) {
    return InvalidArgument("INVALID_PAGE_TOKEN", "page_token is not one this server issued",
                           "page_token");
  }
  return offset;
}

int64_t ClampPageSize(int32_t page_size, int64_t default_size) {
  if (page_size <= 0) return default_size;
  return page_size > 1000 ? 1000 : page_size;
}

absl::StatusOr<RecordPage> ListRecordPage(store::Store& store, store::Kind kind, int32_t page_size,
                                          absl::string_view page_token, int64_t default_size) {
  ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(page_token));
  const int64_t size = ClampPageSize(page_size, default_size);
  store::ListOptions o;
  o.offset = offset;
  o.limit = size + 1;  // One more than asked tells whether a next page exists.
  ASSIGN_OR_RETURN(auto records, store.List(kind, o));
  RecordPage page;
  for (size_t i = 0; i < records.size() && static_cast<int64_t>(i) < size; ++i) {
    page.records.push_back(std::move(records[i].data));
  }
  if (static_cast<int64_t>(records.size()) > size)
    page.next_page_token = absl::StrCat(offset + size);
  return page;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  int64_t us = absl::ToUnixMicros(t);
  out->set_seconds(us / 1000000);
  out->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

std::string RandomHex(int n) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kHex[] = "0123456789abcdef";
  std::string out(n, '0');
  for (auto& c : out) c = kHex[rng() & 15];
  return out;
}

}  // namespace provp::server
