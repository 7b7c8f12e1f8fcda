// Reads and writes the safetensors format (8-byte little-endian header
// length, JSON header, raw little-endian tensor bytes). The reader treats
// the file as untrusted: every length, offset and shape is checked against
// the file size before any tensor is allocated. Thread-safe (no shared
// state); writes are atomic (util::WriteFileAtomic).
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/env.h"

namespace provp::clip {

struct SafetensorsContents {
  // Tensor name -> CPU tensor (contiguous, dtype as stored).
  std::map<std::string, torch::Tensor> tensors;
  // The optional "__metadata__" string map.
  std::map<std::string, std::string> metadata;
};

// Parses safetensors bytes. `label` names the source in error messages
// (usually the file path). Supported dtypes: F64 F32 F16 BF16 I64 I32 I16
// I8 U8 BOOL; others are an error naming the tensor.
absl::StatusOr<SafetensorsContents> ParseSafetensors(absl::string_view bytes,
                                                     const std::string& label);

// Reads and parses a whole file (NOT_FOUND when it does not exist).
absl::StatusOr<SafetensorsContents> ReadSafetensors(const std::string& path);

// Serialises tensors (any device, made contiguous on CPU) with metadata.
// Names must be non-empty and not "__metadata__".
absl::StatusOr<std::string> SerializeSafetensors(
    const std::map<std::string, torch::Tensor>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// SerializeSafetensors + atomic write to `path` through `env`.
absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {},
                              util::Env* env = util::Env::Default());

}  // namespace provp::clip
