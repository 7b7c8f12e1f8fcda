// The backend-independent parts of store.h: kind names and choosing a
// backend from the --store value.
#include "core/store/store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/store/schema.h"

namespace provp::store {

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kDataset:
      return "dataset";
    case Kind::kJob:
      return "tuning job";
    case Kind::kPromptSet:
      return "prompt set";
    case Kind::kClassSet:
      return "class set";
  }
  return "record";
}

absl::StatusOr<int64_t> Store::Update(Kind, const Record&, int64_t) {
  return absl::UnimplementedError("this store has no compare-and-set updates");
}
absl::StatusOr<std::optional<Record>> Store::Claim(Kind, const ClaimOptions&) {
  return absl::UnimplementedError("this store has no leases");
}
absl::Status Store::RenewLease(Kind, const std::string&, const std::string&, int64_t) {
  return absl::UnimplementedError("this store has no leases");
}
absl::Status Store::ReleaseLease(Kind, const std::string&, const std::string&) {
  return absl::UnimplementedError("this store has no leases");
}

int SchemaVersion() { return internal::kSchemaVersion; }

std::string RedactStoreSpec(const std::string& spec) {
  // scheme://user:password@host...: the password is between the first ':'
  // after "//" and the '@' that ends the user info.
  const size_t start = spec.find("//");
  if (start == std::string::npos) return spec;
  const size_t at = spec.find('@', start);
  const size_t colon = spec.find(':', start + 2);
  if (at == std::string::npos || colon == std::string::npos || colon > at) return spec;
  return spec.substr(0, colon + 1) + "***" + spec.substr(at);
}

bool IsSharedStore(const std::string& spec) {
  return absl::StartsWith(spec, "postgresql://") || absl::StartsWith(spec, "postgres://");
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& spec,
                                                 const std::string& default_sqlite_path,
                                                 util::Env* env) {
  if (spec.empty()) return OpenSqliteStore(default_sqlite_path, env);
  if (absl::StartsWith(spec, "sqlite:")) {
    std::string path = spec.substr(7);
    if (path.empty()) return absl::InvalidArgumentError("--store sqlite: needs a path");
    return OpenSqliteStore(path, env);
  }
  if (IsSharedStore(spec)) return OpenPostgresStore(spec);
  return absl::InvalidArgumentError(
      absl::StrCat("--store '", spec,
                   "' is not a store: expected postgresql://..., sqlite:PATH or nothing "
                   "(SQLite in the data folder)"));
}

}  // namespace provp::store
