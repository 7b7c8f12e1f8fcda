// Preset choice, resolution and range checks of hyperparameters.h.
#include "core/train/hyperparameters.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/status_macros.h"

namespace provp::train {
namespace {

// Debian's Abseil has its own string_view; the header's constants are
// std::string_view so they stay constexpr for every includer.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status FieldError(std::string_view field, const std::string& message) {
  absl::Status s = absl::InvalidArgumentError(absl::StrCat(A(field), " ", message));
  s.SetPayload(A(kFieldPayloadUrl), absl::Cord(std::string(field)));
  return s;
}

template <typename T>
absl::Status IntRange(std::string_view field, T value, T lo, T hi) {
  if (value < lo || value > hi) {
    return FieldError(field, absl::StrCat("must be in [", lo, ", ", hi, "], got ", value));
  }
  return absl::OkStatus();
}

absl::Status RealRange(std::string_view field, double value, double lo, double hi,
                       bool lo_open = false) {
  const bool ok = std::isfinite(value) && (lo_open ? value > lo : value >= lo) && value <= hi;
  if (!ok) {
    return FieldError(
        field, absl::StrCat("must be in ", lo_open ? "(" : "[", lo, ", ", hi, "], got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultPresetName(int64_t shots, bool has_novel_classes) {
  if (has_novel_classes) return std::string(kBaseToNovelPreset);
  return absl::StrCat("few_shot_", LadderShots(shots));
}

std::string JoinedVariantNames(bool include_zero_shot) {
  std::vector<absl::string_view> names;
  for (std::string_view v : kVariantNames) {
    if (include_zero_shot || v != kZeroShotVariant) names.push_back(A(v));
  }
  return absl::StrJoin(names, ", ");
}

std::string JoinedPresetNames() {
  std::vector<absl::string_view> names;
  for (const PresetSpec& p : kPresets) names.push_back(A(p.name));
  return absl::StrJoin(names, ", ");
}

std::string JoinedShotLadder() { return absl::StrJoin(kShotLadder, ", "); }

std::string InvalidHyperparameterField(const absl::Status& status) {
  absl::optional<absl::Cord> field = status.GetPayload(A(kFieldPayloadUrl));
  return field ? std::string(*field) : std::string();
}

absl::Status ValidateHyperparameters(const ResolvedHyperparameters& h) {
  if (!IsPresetName(h.preset)) {
    return FieldError("preset", absl::StrCat("'", h.preset, "' is not a preset (expected one of: ",
                                             JoinedPresetNames(), ")"));
  }
  if (!IsVariantName(h.variant)) {
    return FieldError("variant",
                      absl::StrCat("'", h.variant, "' is not a variant (expected one of: ",
                                   JoinedVariantNames(), ")"));
  }
  if (!IsSelectionName(h.selection)) {
    return FieldError("selection", absl::StrCat("must be ", A(kSelectionLast), " or ",
                                                A(kSelectionBestVal), ", got '", h.selection, "'"));
  }
  RETURN_IF_ERROR(IntRange<int64_t>("shots", h.shots, 1, kMaxShots));
  const int64_t min_prompts = h.variant == kZeroShotVariant ? 0 : 1;
  RETURN_IF_ERROR(IntRange<int64_t>("num_prompts", h.num_prompts, min_prompts, kMaxNumPrompts));
  RETURN_IF_ERROR(IntRange<int64_t>("depth", h.depth, 0, kMaxNumPrompts));
  RETURN_IF_ERROR(IntRange<int64_t>("epochs", h.epochs, 0, kMaxEpochs));
  RETURN_IF_ERROR(IntRange<int64_t>("batch_size", h.batch_size, 1, kMaxBatchSize));
  RETURN_IF_ERROR(RealRange("learning_rate", h.learning_rate, 0.0, kMaxLearningRate, true));
  RETURN_IF_ERROR(RealRange("alpha", h.alpha, 0.0, 1.0));
  RETURN_IF_ERROR(RealRange("ref_lambda", h.ref_lambda, 0.0, kMaxRefLambda));
  RETURN_IF_ERROR(RealRange("weight_decay", h.weight_decay, 0.0, kMaxWeightDecay));
  RETURN_IF_ERROR(RealRange("min_crop_scale", h.min_crop_scale, 0.0, 1.0, true));
  if (h.seed < 0) return FieldError("seed", absl::StrCat("must be >= 0, got ", h.seed));
  return absl::OkStatus();
}

absl::StatusOr<ResolvedHyperparameters> ResolveHyperparameters(const HyperparameterRequest& req) {
  RETURN_IF_ERROR(IntRange<int64_t>("shots", req.shots, 1, kMaxShots));
  ResolvedHyperparameters r;
  r.preset = req.preset.empty() ? DefaultPresetName(req.shots, req.has_novel_classes) : req.preset;
  const PresetSpec* preset = FindPreset(r.preset);
  if (preset == nullptr) {
    return FieldError("preset", absl::StrCat("'", r.preset, "' is not a preset (expected one of: ",
                                             JoinedPresetNames(), ")"));
  }
  r.shots = req.shots;
  r.num_prompts = preset->num_prompts;
  r.epochs = preset->epochs;
  r.learning_rate = preset->learning_rate;
  r.batch_size = kDefaultBatchSize;
  r.weight_decay = preset->weight_decay;
  r.min_crop_scale = kDefaultMinCropScale;
  r.seed = req.seed;
  r.selection = req.selection.empty() ? std::string(kSelectionLast) : req.selection;
  // A preset without Ref is the provp variant; a named variant resets what
  // it defines (alpha, Ref, depth) and keeps the preset's m.
  r.variant = !req.variant.empty() ? req.variant
              : preset->use_ref    ? std::string(kDefaultVariant)
                                   : std::string("provp");
  const VariantSpec* variant = FindVariant(r.variant);
  if (variant == nullptr) {
    return FieldError("variant",
                      absl::StrCat("'", r.variant, "' is not a variant (expected one of: ",
                                   JoinedVariantNames(), ")"));
  }
  r.alpha = variant->alpha;
  r.ref_lambda = variant->ref_lambda;
  r.depth = variant->depth;
  if (r.variant == kZeroShotVariant) r.num_prompts = 0;
  if (req.num_prompts) r.num_prompts = *req.num_prompts;
  if (req.depth) r.depth = *req.depth;
  if (req.epochs) r.epochs = *req.epochs;
  if (req.batch_size) r.batch_size = *req.batch_size;
  if (req.learning_rate) r.learning_rate = *req.learning_rate;
  if (req.alpha) r.alpha = *req.alpha;
  if (req.ref_lambda) r.ref_lambda = *req.ref_lambda;
  if (req.weight_decay) r.weight_decay = *req.weight_decay;
  if (req.min_crop_scale) r.min_crop_scale = *req.min_crop_scale;
  if (req.use_ref.has_value()) {
    if (!*req.use_ref) {
      r.ref_lambda = 0.0;
    } else if (r.ref_lambda == 0.0) {
      if (req.ref_lambda) {
        return FieldError("ref_lambda", "is 0 but use_ref asks for Ref; drop one of them");
      }
      r.ref_lambda = 1.0;  // the reference's lambda (quirk Q5)
    }
  }
  r.use_ref = r.ref_lambda > 0.0;
  RETURN_IF_ERROR(ValidateHyperparameters(r));
  return r;
}

}  // namespace provp::train
