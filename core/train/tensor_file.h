// The tensor container of checkpoints and prompt-set files: safetensors via
// core/clip/safetensors.h (which validates untrusted files), with this
// library's dtype policy on top - tensors are written as fp32 (int64 kept)
// and fp16/bf16 read back widened to fp32. Thread-safe (no shared state).
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/util/env.h"

namespace provp::train {

struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;  // CPU, contiguous
  std::map<std::string, std::string> metadata;
};

// Writes the tensors (any device; floating types stored as fp32, int64 as
// is) atomically, through `env`.
absl::Status WriteTensorFile(const std::string& path, const TensorFile& file,
                             util::Env* env = util::Env::Default());

// NOT_FOUND when absent; INVALID_ARGUMENT naming file and tensor for a
// malformed file. fp16/bf16/fp64 tensors come back as fp32.
absl::StatusOr<TensorFile> ReadTensorFile(const std::string& path);

// The JSON object stored in file.metadata[key], checked to carry
// "format_version" == version. INVALID_ARGUMENT "<kind> <path>: <reason>"
// when the key is missing, the text is not a JSON object or the version
// differs. Shared by checkpoints and prompt-set files.
absl::StatusOr<nlohmann::json> ReadVersionedMetadata(const TensorFile& file, const std::string& key,
                                                     int version, const std::string& kind,
                                                     const std::string& path);

}  // namespace provp::train
