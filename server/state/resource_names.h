// Resource names ("promptSets/<id>") and ids: the one syntax check of an id,
// the parse of a name into its id, and fresh random ids. Pure functions
// (RandomHex uses a thread-local generator); thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::server {

// Collections of the API ("<collection>/<id>").
inline constexpr char kDatasets[] = "datasets";
inline constexpr char kTuningJobs[] = "tuningJobs";
inline constexpr char kPromptSets[] = "promptSets";
inline constexpr char kClassSets[] = "classSets";

// "promptSets/x" -> "x" after checking the prefix and the id syntax.
absl::StatusOr<std::string> ParseName(absl::string_view name, absl::string_view collection,
                                      absl::string_view field);
// [a-z0-9][a-z0-9-_]{0,62}; INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidateId(absl::string_view id, absl::string_view field);
// Random lower-case hex string of `n` characters.
std::string RandomHex(int n);

}  // namespace provp::server
