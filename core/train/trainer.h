// The ProVP-Ref training loop: SGD on the prompts only, per-epoch LR
// schedule, seeded sampling and augmentation, a student (prompted) and a
// teacher (same frozen CLIP, no prompts) pass per step, checkpoints at every
// epoch end, resume, progress reports, cancellation and model selection on
// a validation split (never the test split). Deterministic for a seed on
// CPU: a resumed run ends with bit-identical prompts.
// One Trainer runs one job at a time; not thread-safe. The cancel flag and
// the progress callback may be set/observed from other threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clip/clip_model.h"
#include "core/provp/provp_model.h"
#include "core/train/evaluation.h"
#include "core/train/train_config.h"

namespace provp::train {

// Few-shot training images, decoded once and kept in memory for the run.
struct TrainingSet {
  // uint8 [H,W,3] each (sizes may differ). Moved to the model's device once
  // per run when they are elsewhere.
  std::vector<torch::Tensor> images;
  // Class index per image, in [0, C) for C text features.
  std::vector<int64_t> labels;
};

struct TrainProgress {
  enum class Kind { kStep, kEpoch };
  Kind kind = Kind::kStep;
  // 1-based, as every layer counts epochs: the epoch in progress (steps)
  // or just finished (epoch reports), in [1, epochs].
  int64_t epoch = 0;
  int64_t epochs = 0;
  int64_t step = 0;  // 1-based within the epoch
  int64_t steps_per_epoch = 0;
  int64_t global_step = 0;  // steps done so far, all epochs
  int64_t total_steps = 0;
  double learning_rate = 0.0;
  // Step: this batch. Epoch: means over the epoch's steps.
  double loss = 0.0;
  double ce = 0.0;
  double ref = 0.0;
  double train_accuracy = 0.0;  // fraction
  double images_per_second = 0.0;
  double elapsed_seconds = 0.0;
  double eta_seconds = 0.0;
  // Epoch reports with a validation set: its top-1; -1 otherwise.
  double validation_accuracy = -1.0;
};

// Return false to cancel the run (checked right after the call).
using ProgressCallback = std::function<bool(const TrainProgress&)>;

struct TrainerOptions {
  TrainConfig config;
  // Where the per-epoch checkpoint goes; empty = no checkpoints.
  std::string checkpoint_path;
  // Continue from checkpoint_path when it exists (and matches this run).
  bool resume = true;
  // Recorded in checkpoints; resuming a checkpoint of another backbone fails.
  std::string backbone_fingerprint;
  ProgressCallback on_progress;
  // Polled before every step; true cancels the run.
  const std::atomic<bool>* cancel = nullptr;
  // Report every step to on_progress (epoch reports always go out).
  bool report_steps = true;
};

struct TrainResult {
  // Selected prompts, fp32 CPU [depth,m,width]; undefined for zero_shot.
  torch::Tensor prompts;
  int64_t epochs_completed = 0;
  // 1-based epoch whose prompts were selected; 0 when none trained.
  int64_t selected_epoch = 0;
  int64_t resumed_from_epoch = 0;  // 0 = fresh start
  int64_t steps = 0;               // steps run by this call
  // Means over the last trained epoch.
  double final_loss = 0.0;
  double final_ce = 0.0;
  double final_ref = 0.0;
  double final_train_accuracy = 0.0;
  double best_validation_accuracy = -1.0;
  double seconds = 0.0;
  double images_per_second = 0.0;
  // Per-epoch summaries, including epochs from before a resume: "epoch"
  // (1-based), "learning_rate", "loss", "ce", "ref", "train_accuracy",
  // "seconds" and, with a validation set, "validation_accuracy".
  nlohmann::json history = nlohmann::json::array();
};

class Trainer {
 public:
  // Validates the config against the backbone and builds the prompted model
  // (prompt init seeded by config.seed) on the backbone's device and dtype.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(clip::ClipModel clip,
                                                         TrainerOptions options);

  // Trains on `data` against fixed `text_features` [C,D]. `validation`
  // (preprocessed) is evaluated after every epoch and is required for
  // ModelSelection::kBestValidation. Errors: INVALID_ARGUMENT for bad data,
  // FAILED_PRECONDITION for a non-finite loss or a checkpoint from another
  // run, CANCELLED when cancelled (the last epoch checkpoint stays).
  // Afterwards model() holds the selected prompts.
  absl::StatusOr<TrainResult> Run(const TrainingSet& data, const torch::Tensor& text_features,
                                  const EvalSet* validation = nullptr);

  provp::ProvpModel& model() { return *model_; }
  const TrainerOptions& options() const { return options_; }

 private:
  Trainer(std::unique_ptr<provp::ProvpModel> model, TrainerOptions options);

  std::unique_ptr<provp::ProvpModel> model_;
  TrainerOptions options_;
};

// Digest of a training set (count, labels, image shapes) for checkpoints.
std::string TrainingSetFingerprint(const TrainingSet& data);

// Number of steps per epoch: N / batch (drop_last) when N >= batch, else 1.
int64_t StepsPerEpoch(int64_t num_images, int64_t batch_size);

}  // namespace provp::train
