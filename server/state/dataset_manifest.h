// The manifest of a stored dataset, kept in the file store under its own
// content key (v1::Dataset.manifest_key): the dataset's name, class names
// and items, each item naming its image by content key ("sha256:<hex>",
// uploaded images in the file store) or by absolute path (DIRECTORY
// datasets, read in place). JSON in the provp_data manifest shape
// ({"name", "class_names", "items": [{"path", "label", "split"}]}), so the
// bytes are deterministic for a given dataset. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/dataset.h"

namespace provp::server {

// The manifest bytes of `dataset` (items in train, val, test order).
std::string SerializeDatasetManifest(const data::Dataset& dataset);

// Parses manifest bytes; `what` names them in errors. DATA_LOSS when the
// bytes are not a manifest (they were verified against their key, so a
// malformed manifest was written wrong or by something else).
absl::StatusOr<data::Dataset> ParseDatasetManifest(absl::string_view bytes, absl::string_view what);

// The content keys among the items' references (uploaded images).
std::vector<std::string> ImageKeysOf(const data::Dataset& dataset);

}  // namespace provp::server
