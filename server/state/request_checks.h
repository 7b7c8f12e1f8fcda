// Checks of request content shared by several operations of the server
// core: class-name lists, templates and image counts against the Limits.
// Each failure is INVALID_ARGUMENT with a reason and the offending field.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/state/limits.h"

namespace provp::server {

// Distinct, non-empty names within the length limit, at most max_count.
absl::Status ValidateNames(const std::vector<std::string>& names, absl::string_view field,
                           const Limits& limits, int max_count);
// Templates each containing "{}".
absl::Status ValidateTemplates(const std::vector<std::string>& templates, const Limits& limits);
// 1..max_images_per_request images.
absl::Status CheckImageCount(int count, const Limits& limits);

}  // namespace provp::server
