// Internal to provp_data: reads a JSON file with a size cap and a nesting
// cap (nlohmann's parser recurses per level), turning parse errors into
// INVALID_ARGUMENT that names the file and byte position. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace provp::data::internal {

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path, uint64_t max_bytes);

}  // namespace provp::data::internal
