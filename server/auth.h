// API-key authentication with two scopes. Keys come from a file, one per
// line: "<scope> <key> [name]" with scope "classify" (data plane only) or
// "admin" (everything); '#' starts a comment. Requests send
// "authorization: Bearer <key>". Only key names are ever logged.
// Immutable after Load; thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::server {

enum class Scope { kClassify, kAdmin };

struct Principal {
  // Key name from the file (or "key-<line>"); "anonymous" with auth off.
  std::string name;
  Scope scope = Scope::kClassify;
};

class ApiKeys {
 public:
  // Auth disabled: every request is an admin ("anonymous").
  static std::unique_ptr<ApiKeys> Disabled();
  // Parses the key file; errors name the file and line (never the key).
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Parse(absl::string_view text,
                                                        const std::string& origin);

  bool enabled() const { return enabled_; }
  size_t size() const { return entries_.size(); }

  // Checks an "authorization" header value against `required`.
  // UNAUTHENTICATED (MISSING_CREDENTIALS / INVALID_API_KEY) or
  // PERMISSION_DENIED (INSUFFICIENT_SCOPE).
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization_header,
                                         Scope required) const;

 private:
  struct Entry {
    std::string key;
    Principal principal;
  };
  bool enabled_ = true;
  std::vector<Entry> entries_;
};

}  // namespace provp::server
