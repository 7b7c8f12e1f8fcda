// The one home of the tuning vocabulary, with no LibTorch, JSON or gRPC in
// it, so the server, the core and the CLIs' help read the same facts:
// variant and preset names, the shot ladder, the selection names, the
// numeric caps on every hyperparameter, the recipes of the reference
// configs (METHOD.md sections 5 and 12), and ResolveHyperparameters, which
// turns what a caller asked for (preset, variant, explicit overrides) into
// the values a run uses. The names here are the names in every layer:
// learning_rate, ref_lambda, min_crop_scale, epochs counted from 1.
// Constants are constexpr; the functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace provp::train {

// --- Names ---------------------------------------------------------------

// Variants from the same code path (METHOD.md section 12). zero_shot trains
// nothing; the server refuses it as a job variant.
inline constexpr std::string_view kVariantNames[] = {"provp_ref", "provp", "vpt_deep",
                                                     "vpt_shallow", "zero_shot"};
inline constexpr std::string_view kDefaultVariant = "provp_ref";
inline constexpr std::string_view kZeroShotVariant = "zero_shot";

// Shots the reference recipes exist for. Other counts (e.g. 3) are accepted
// and take the recipe of the largest rung below them (LadderShots).
inline constexpr int kShotLadder[] = {1, 2, 4, 8, 16};

// Which epoch's prompts a run returns: "last" (default) or "best_val" (best
// top-1 on the few-shot validation split, ties to the earliest epoch). The
// test split is never used for selection (METHOD.md Q9).
inline constexpr std::string_view kSelectionLast = "last";
inline constexpr std::string_view kSelectionBestVal = "best_val";

// --- Caps ------------------------------------------------------------------
// Far above any published setting, low enough that an untrusted request
// cannot ask for absurd work or allocations. Ranges are inclusive unless
// the comment says otherwise.
inline constexpr int64_t kMaxShots = 100000;
inline constexpr int64_t kMaxEpochs = 1000;  // the reference's longest is 200
inline constexpr int64_t kMaxBatchSize = 4096;
inline constexpr int64_t kMaxNumPrompts = 1024;    // published m <= 50
inline constexpr double kMaxLearningRate = 100.0;  // (0, 100]; imagenet uses 5
inline constexpr double kMaxRefLambda = 1000.0;    // [0, 1000]
inline constexpr double kMaxWeightDecay = 1.0;     // [0, 1]
// alpha in [0, 1]; min_crop_scale in (0, 1].

// --- Recipes ---------------------------------------------------------------

struct PresetSpec {
  std::string_view name;
  std::string_view source;  // the reference config it reproduces
  int shots;
  int64_t epochs;
  double weight_decay;
  bool use_ref;
  int64_t num_prompts;
  double learning_rate;
};

// METHOD.md section 5. m is not in any reference config: 50 is the README
// few-shot value, 16 the hard-coded base-to-novel one. Every preset uses
// momentum 0.9, batch 32, one warm-up epoch at 1e-5 and min_crop_scale 0.08.
inline constexpr PresetSpec kPresets[] = {
    {"few_shot_1", "vit_b16_ref_ep50", 1, 50, 1e-3, true, 50, 0.1},
    {"few_shot_1_no_ref", "vit_b16_ep50", 1, 50, 5e-4, false, 50, 0.1},
    {"few_shot_2", "vit_b16_ref_ep100", 2, 100, 5e-4, true, 50, 0.1},
    // vit_b16_ep100 also uses the ImageNet mean (quirk Q14); not reproduced.
    {"few_shot_2_no_ref", "vit_b16_ep100", 2, 100, 5e-4, false, 50, 0.1},
    {"few_shot_4", "vit_b16_ref_ep100", 4, 100, 5e-4, true, 50, 0.1},
    {"few_shot_4_no_ref", "vit_b16_ep100", 4, 100, 5e-4, false, 50, 0.1},
    {"few_shot_8", "vit_b16", 8, 200, 5e-4, true, 50, 0.1},
    {"few_shot_16", "vit_b16", 16, 200, 5e-4, true, 50, 0.1},
    {"base_to_novel", "vit_b16_b2n_ep100", 16, 100, 1e-3, true, 16, 0.1},
    {"imagenet", "vit_b16_img", 16, 100, 5e-3, true, 50, 5.0},
};
inline constexpr std::string_view kBaseToNovelPreset = "base_to_novel";
inline constexpr int64_t kDefaultBatchSize = 32;
inline constexpr double kDefaultMinCropScale = 0.08;  // torchvision / CoOp

// What a variant sets before any override (the rest as provp_ref).
struct VariantSpec {
  std::string_view name;
  double alpha;
  double ref_lambda;
  int64_t depth;  // 0 = all layers
};
inline constexpr VariantSpec kVariants[] = {
    {"provp_ref", 0.01, 1.0, 0},
    {"provp", 0.01, 0.0, 0},
    // VPT-deep in this framework: pure replacement and no Ref (the baseline
    // as the VPT paper trains it).
    {"vpt_deep", 0.0, 0.0, 0},
    {"vpt_shallow", 0.01, 0.0, 1},
    {"zero_shot", 0.01, 0.0, 0},
};

constexpr bool IsVariantName(std::string_view name) {
  for (std::string_view v : kVariantNames) {
    if (v == name) return true;
  }
  return false;
}

constexpr const PresetSpec* FindPreset(std::string_view name) {
  for (const PresetSpec& p : kPresets) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

constexpr bool IsPresetName(std::string_view name) { return FindPreset(name) != nullptr; }

constexpr const VariantSpec* FindVariant(std::string_view name) {
  for (const VariantSpec& v : kVariants) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

constexpr bool IsSelectionName(std::string_view name) {
  return name == kSelectionLast || name == kSelectionBestVal;
}

// The largest ladder rung <= shots (1 for shots < 1).
constexpr int LadderShots(int64_t shots) {
  int rung = kShotLadder[0];
  for (int s : kShotLadder) {
    if (shots >= s) rung = s;
  }
  return rung;
}

// The preset a run gets when none is named: base_to_novel when the run holds
// out novel classes (the CoCoOp protocol's recipe), otherwise
// few_shot_<LadderShots(shots)>.
std::string DefaultPresetName(int64_t shots, bool has_novel_classes);

// "provp_ref, provp, ..." for messages and --help texts.
std::string JoinedVariantNames(bool include_zero_shot = true);
std::string JoinedPresetNames();
std::string JoinedShotLadder();  // "1, 2, 4, 8, 16"

// --- Resolution ------------------------------------------------------------

// What a caller asked for; unset fields take the preset's (then the
// variant's) value.
struct HyperparameterRequest {
  std::string preset;   // "" = DefaultPresetName(shots, has_novel_classes)
  std::string variant;  // "" = provp_ref
  int64_t shots = 0;    // required, >= 1
  bool has_novel_classes = false;
  std::optional<int64_t> num_prompts;
  std::optional<int64_t> depth;
  std::optional<int64_t> epochs;
  std::optional<int64_t> batch_size;
  std::optional<double> learning_rate;
  std::optional<double> alpha;
  // Ref on/off; off forces ref_lambda 0. Unset = on when ref_lambda > 0.
  std::optional<bool> use_ref;
  std::optional<double> ref_lambda;
  std::optional<double> weight_decay;
  std::optional<double> min_crop_scale;
  int64_t seed = 1;
  std::string selection;  // "" = last
};

// The values a run uses; what a job reports back.
struct ResolvedHyperparameters {
  std::string preset;
  std::string variant;
  int64_t shots = 0;
  int64_t num_prompts = 0;
  int64_t depth = 0;  // 0 = all layers
  int64_t epochs = 0;
  double learning_rate = 0.0;
  int64_t batch_size = 0;
  double alpha = 0.0;
  bool use_ref = true;  // ref_lambda > 0
  double ref_lambda = 0.0;
  double weight_decay = 0.0;
  double min_crop_scale = 0.0;
  int64_t seed = 1;
  std::string selection;
};

// Preset, then the variant's defaults (keeping the preset's m), then every
// explicit field. INVALID_ARGUMENT naming the field (as "shots",
// "learning_rate", ...) for an unknown name or a value outside its cap.
absl::StatusOr<ResolvedHyperparameters> ResolveHyperparameters(
    const HyperparameterRequest& request);

// The range checks alone (also run by ResolveHyperparameters).
absl::Status ValidateHyperparameters(const ResolvedHyperparameters& resolved);

// Errors of the two functions above carry the offending field's name
// ("epochs", ...) as a payload under this URL, so a front end can point at
// its own field without reading the message.
inline constexpr std::string_view kFieldPayloadUrl = "type.provp.dev/hyperparameter_field";
// The field an error names; "" when it names none.
std::string InvalidHyperparameterField(const absl::Status& status);

}  // namespace provp::train
