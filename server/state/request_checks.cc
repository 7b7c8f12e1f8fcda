// Implementation of request_checks.h.
#include "server/state/request_checks.h"

#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/state/errors.h"

namespace provp::server {

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

absl::Status CheckImageCount(int count, const Limits& limits) {
  if (count == 0) return InvalidArgument("NO_IMAGES", "images is empty", "images");
  if (count > limits.max_images_per_request) {
    return InvalidArgument("TOO_MANY_IMAGES",
                           absl::StrCat("request has ", count, " images; the limit is ",
                                        limits.max_images_per_request),
                           "images");
  }
  return absl::OkStatus();
}

}  // namespace provp::server
