// Everything one ProVP-Ref training run is configured by, the named recipes
// of the reference configs (METHOD.md sections 5 and 12) and the JSON form
// stored in checkpoints and prompt-set files. Every preset value can be
// overridden (MergeConfigJson). Plain value types; thread-safe to copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/image/preprocess.h"
#include "core/provp/provp_options.h"
#include "core/train/hyperparameters.h"
#include "core/train/lr_schedule.h"

namespace provp::train {

// Which epoch's prompts a run returns. The test split is never used for
// selection (the reference picks the best test epoch, METHOD.md Q9).
enum class ModelSelection {
  kLastEpoch,       // default
  kBestValidation,  // best top-1 on the few-shot validation split (ties: earliest)
};

// "last" / "best_val" (hyperparameters.h); the parser also takes the older
// "last_epoch" / "best_validation" that earlier files carry.
const char* ModelSelectionName(ModelSelection selection);
absl::StatusOr<ModelSelection> ModelSelectionFromName(absl::string_view name);

struct TrainConfig {
  // Name of the preset this came from ("" when built by hand).
  std::string preset;
  // Variant and prompt hyperparameters.
  provp::ProvpOptions model;
  // Shots per class the recipe is meant for (informational; 0 = unknown).
  int64_t shots = 0;
  int64_t epochs = 200;
  // SGD on the prompts: PyTorch semantics, dampening 0, nesterov off,
  // coupled (L2-in-gradient) weight decay.
  double learning_rate = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double warmup_lr = 1e-5;
  int64_t warmup_epochs = 1;
  // Batch 32; a training set smaller than this trains as one whole batch,
  // otherwise incomplete last batches are dropped (Dassl drop_last).
  int64_t batch_size = 32;
  // Seeds the sampler/augmentation RNG and the prompt init.
  uint64_t seed = 1;
  // Train-time augmentation. augment.size is informational: the trainer
  // crops to the model's input resolution, the only size its encoder takes.
  image::AugmentOptions augment;
  ModelSelection selection = ModelSelection::kLastEpoch;
};

// Preset names: few_shot_1, few_shot_1_no_ref, few_shot_2, few_shot_2_no_ref,
// few_shot_4, few_shot_4_no_ref, few_shot_8, few_shot_16, base_to_novel,
// imagenet. The *_no_ref ones are the README-literal recipes (Ref off).
std::vector<std::string> PresetNames();
absl::StatusOr<TrainConfig> PresetConfig(absl::string_view name);
// The preset for a shot count: 1/2/4/8/16, with Ref unless `no_ref` (only
// 1/2/4 have no-Ref recipes).
absl::StatusOr<TrainConfig> PresetForShots(int64_t shots, bool no_ref = false);

// The config a run of these resolved values trains with (the preset's
// schedule and momentum, the values, augment.size left at its default),
// and back: what a config runs, as a job reports it.
absl::StatusOr<TrainConfig> ConfigFromResolved(const ResolvedHyperparameters& resolved);
ResolvedHyperparameters ResolvedFromConfig(const TrainConfig& config);

// Range checks; errors name the field.
absl::Status ValidateConfig(const TrainConfig& config);

LrScheduleOptions ScheduleOf(const TrainConfig& config);

// Full JSON form (every field written).
nlohmann::json ConfigToJson(const TrainConfig& config);
// Applies a partial JSON object onto `base` (missing keys keep base's
// values; unknown keys and wrong types are INVALID_ARGUMENT naming the key),
// then validates. A key "preset" in the patch starts from that preset.
absl::StatusOr<TrainConfig> MergeConfigJson(const TrainConfig& base, const nlohmann::json& patch);
// MergeConfigJson onto the defaults.
absl::StatusOr<TrainConfig> ConfigFromJson(const nlohmann::json& json);

}  // namespace provp::train
