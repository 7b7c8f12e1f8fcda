// Where tests find ../shared (fixtures, CLIP vocab) and their own test data.
// PROVP_SHARED_DIR in the environment overrides the compiled-in default so
// the same binaries run on a GPU host that carries a copy of the fixtures.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace provp::testing {

inline std::string SharedDir() {
  if (const char* env = std::getenv("PROVP_SHARED_DIR"); env && *env) return env;
  return PROVP_DEFAULT_SHARED_DIR;
}

// Directories named by a colon-separated environment variable, or the
// default when it is unset or empty.
inline std::vector<std::string> DirsFromEnv(const char* var, const std::string& fallback) {
  const char* env = std::getenv(var);
  if (!env || !*env) return {fallback};
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(env, ':', absl::SkipEmpty())) {
    out.emplace_back(part);
  }
  return out;
}

}  // namespace provp::testing
