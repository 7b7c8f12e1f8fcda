// Implementation of auth.h. Key comparison runs in time independent of
// where the first difference is, so timing does not reveal key prefixes.
#include "server/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/file_util.h"
#include "server/state/errors.h"

namespace provp::server {
namespace {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

std::unique_ptr<ApiKeys> ApiKeys::Disabled() {
  auto keys = std::unique_ptr<ApiKeys>(new ApiKeys());
  keys->enabled_ = false;
  return keys;
}

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Load(const std::string& path) {
  auto text = util::ReadFile(path, 1 << 20);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("API key file ", path, ": ", text.status().message()));
  }
  return Parse(*text, path);
}

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Parse(absl::string_view text,
                                                        const std::string& origin) {
  auto keys = std::unique_ptr<ApiKeys>(new ApiKeys());
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    size_t hash = line.find('#');
    if (hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (parts.empty()) continue;
    if (parts.size() < 2 || parts.size() > 3) {
      return absl::InvalidArgumentError(absl::StrCat("API key file ", origin, " line ", line_no,
                                                     ": expected '<scope> <key> [name]'"));
    }
    Entry e;
    if (parts[0] == "admin") {
      e.principal.scope = Scope::kAdmin;
    } else if (parts[0] == "classify") {
      e.principal.scope = Scope::kClassify;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("API key file ", origin, " line ", line_no,
                                                     ": scope must be 'admin' or 'classify'"));
    }
    if (parts[1].size() < 8) {
      return absl::InvalidArgumentError(absl::StrCat("API key file ", origin, " line ", line_no,
                                                     ": keys must have at least 8 characters"));
    }
    e.key = std::string(parts[1]);
    e.principal.name = parts.size() == 3 ? std::string(parts[2]) : absl::StrCat("key-", line_no);
    keys->entries_.push_back(std::move(e));
  }
  if (keys->entries_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("API key file ", origin, " holds no keys"));
  }
  return keys;
}

absl::StatusOr<Principal> ApiKeys::Authenticate(absl::string_view header, Scope required) const {
  if (!enabled_) return Principal{"anonymous", Scope::kAdmin};
  header = absl::StripAsciiWhitespace(header);
  if (header.empty()) {
    return MakeError(absl::StatusCode::kUnauthenticated, "MISSING_CREDENTIALS",
                     "missing 'authorization: Bearer <key>' metadata");
  }
  if (!absl::StartsWithIgnoreCase(header, "bearer ")) {
    return MakeError(absl::StatusCode::kUnauthenticated, "INVALID_API_KEY",
                     "authorization metadata must be 'Bearer <key>'");
  }
  absl::string_view key = absl::StripAsciiWhitespace(header.substr(7));
  const Entry* match = nullptr;
  for (const Entry& e : entries_) {
    if (ConstantTimeEquals(e.key, key)) match = &e;
  }
  if (match == nullptr) {
    return MakeError(absl::StatusCode::kUnauthenticated, "INVALID_API_KEY", "invalid API key");
  }
  if (required == Scope::kAdmin && match->principal.scope != Scope::kAdmin) {
    return MakeError(absl::StatusCode::kPermissionDenied, "INSUFFICIENT_SCOPE",
                     absl::StrCat("key '", match->principal.name,
                                  "' has the classify scope; this method needs admin"));
  }
  return match->principal;
}

}  // namespace provp::server
