// Training checkpoints: everything needed to continue a run so that it ends
// with bit-identical prompts (on CPU) to an uninterrupted one - prompts, the
// SGD momentum buffer, the epoch count, the sampler/augmentation RNG state
// (std::mt19937_64 streamed as text), the configuration, best-validation
// bookkeeping and per-epoch history. One safetensors file: tensors plus a
// JSON document in the metadata key "provp.train_checkpoint". Written
// atomically (temp file + rename), so a crash keeps the previous epoch's.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/train/train_config.h"
#include "core/util/env.h"

namespace provp::train {

struct TrainCheckpoint {
  // Epochs fully trained; training resumes at this 0-based epoch.
  int64_t epochs_completed = 0;
  int64_t global_step = 0;
  // fp32 [depth,m,width] (CPU when loaded).
  torch::Tensor prompts;
  // SGD momentum buffer, same shape; undefined before the first step.
  torch::Tensor momentum_buffer;
  // std::mt19937_64 state as written by operator<<.
  std::string rng_state;
  TrainConfig config;
  // Backbone the run trains on (LoadedCheckpoint::fingerprint) and a digest
  // of the training set (count and labels), to refuse resuming elsewhere.
  std::string backbone_fingerprint;
  std::string data_fingerprint;
  // Best-validation selection: epoch (-1 none), its top-1, its prompts.
  int64_t best_epoch = -1;
  double best_validation_accuracy = -1.0;
  torch::Tensor best_prompts;
  // One object per completed epoch (loss, accuracy, lr, seconds, ...).
  nlohmann::json history = nlohmann::json::array();
};

// Atomic write through `env`: a failed or interrupted save leaves the
// previous checkpoint in place.
absl::Status SaveTrainCheckpoint(const std::string& path, const TrainCheckpoint& checkpoint,
                                 util::Env* env = util::Env::Default());

// NOT_FOUND when the file does not exist; INVALID_ARGUMENT (naming the file
// and field) for anything malformed.
absl::StatusOr<TrainCheckpoint> LoadTrainCheckpoint(const std::string& path);

}  // namespace provp::train
