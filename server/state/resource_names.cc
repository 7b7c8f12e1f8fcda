// Implementation of resource_names.h.
#include "server/state/resource_names.h"

#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/state/errors.h"

namespace provp::server {

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

std::string RandomHex(int n) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kHex[] = "0123456789abcdef";
  std::string out(n, '0');
  for (auto& c : out) c = kHex[rng() & 15];
  return out;
}

}  // namespace provp::server
