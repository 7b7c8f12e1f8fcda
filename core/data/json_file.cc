// Capped JSON file reading; see json_file.h. Exceptions from nlohmann stay
// inside ReadJsonFile.
#include "core/data/json_file.h"

#include "absl/strings/str_cat.h"

#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace provp::data::internal {
namespace {

constexpr int kMaxJsonDepth = 64;

absl::Status CheckJsonDepth(const std::string& text, const std::string& path) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": JSON nested deeper than ", kMaxJsonDepth, " levels"));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path, uint64_t max_bytes) {
  absl::StatusOr<std::string> text = util::ReadFile(path, max_bytes);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("cannot read ", path, ": ", text.status().message()));
  }
  RETURN_IF_ERROR(CheckJsonDepth(*text, path));
  try {
    return nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": malformed JSON: ", e.what()));
  }
}

}  // namespace provp::data::internal
