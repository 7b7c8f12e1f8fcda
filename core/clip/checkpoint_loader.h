// Loads CLIP weights from the four layouts users have and returns them in
// one canonical form: OpenAI/open_clip key names, with sizes inferred.
//   - safetensors with OpenAI/open_clip names (`visual.conv1.weight`, ...)
//   - the same dict written by torch.save (zip + pickle; .pt/.bin)
//   - OpenAI TorchScript archives (ViT-B-16.pt; integer buffers ignored)
//   - a Hugging Face CLIPModel directory (model.safetensors + config.json;
//     q/k/v merged into in_proj, position_ids ignored)
// The layout is detected from the path and the file's first bytes. Every
// loader checks names and shapes against the architecture, so a truncated,
// corrupt or mismatched file is an error naming file, key, expected and
// found values - never a crash. Thread-safe (no shared state).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "core/clip/config.h"

namespace provp::clip {

enum class CheckpointLayout {
  kOpenAISafetensors,
  kTorchSaveStateDict,
  kTorchScriptArchive,
  kHuggingFaceDirectory,
};

const char* CheckpointLayoutName(CheckpointLayout layout);

struct LoadedCheckpoint {
  CheckpointLayout layout;
  ClipConfig config;
  // OpenAI key names -> tensors (CPU, dtype as stored: fp16/bf16/fp32).
  // Exactly the keys ClipModel registers; nothing else.
  std::map<std::string, torch::Tensor> weights;
  // Hex digest over the canonical weights (names, shapes and values
  // converted to fp32), so the same model in any layout or precision has the
  // same fingerprint. Prompt sets record it to refuse a foreign backbone.
  std::string fingerprint;
  // The tokenizer next to the weights, for Tokenizer::FromPath: the folder
  // holding vocab.json + merges.txt, or the OpenAI BPE file
  // (bpe_simple_vocab_16e6.txt.gz, or the folder's only *.txt.gz); "" if
  // none. (Named before it could be a file; kept for its many readers.)
  std::string tokenizer_dir;
};

// Detects the layout of `path` (file or directory) and loads it.
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& path);

// Name -> shape of every weight ClipModel registers for `config` (OpenAI
// key names). The loaders check files against it.
std::map<std::string, std::vector<int64_t>> ExpectedWeightShapes(const ClipConfig& config);

// The fingerprint LoadCheckpoint computes: FNV-1a 64 chained over the
// sorted names, shapes and fp32 values, as 16 hex digits. Works for weights
// from any source (e.g. a random model's named_parameters()).
absl::StatusOr<std::string> WeightsFingerprint(const std::map<std::string, torch::Tensor>& weights);

}  // namespace provp::clip
