// Presets, validation and the JSON form of TrainConfig.
#include "core/train/train_config.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/train/hyperparameters.h"
#include "core/train/preset_names.h"
#include "core/util/status_macros.h"

namespace provp::train {
namespace {

using nlohmann::json;

// The caps live in hyperparameters.h (one set for every layer); the
// augmentation size is the only one of its own.
constexpr int64_t kMaxAugmentSize = 4096;

// The torch-free list the server validated with must name exactly these.
constexpr bool PresetTableMatchesNames() {
  constexpr size_t n = sizeof(kPresets) / sizeof(kPresets[0]);
  if (n != sizeof(kPresetNames) / sizeof(kPresetNames[0])) return false;
  for (size_t i = 0; i < n; ++i) {
    if (kPresets[i].name != kPresetNames[i]) return false;
  }
  return true;
}
static_assert(PresetTableMatchesNames(), "hyperparameters.h and preset_names.h disagree");

TrainConfig FromSpec(const PresetSpec& spec) {
  TrainConfig c;
  c.preset = std::string(spec.name);
  c.model =
      provp::DefaultOptionsFor(spec.use_ref ? provp::Variant::kProvpRef : provp::Variant::kProvp);
  c.model.num_prompts = spec.num_prompts;
  c.shots = spec.shots;
  c.epochs = spec.epochs;
  c.weight_decay = spec.weight_decay;
  c.learning_rate = spec.learning_rate;
  return c;
}

absl::Status TypeError(const std::string& key, const char* expected) {
  return absl::InvalidArgumentError(absl::StrCat("train config: '", key, "' must be ", expected));
}

absl::Status ReadDouble(const json& v, const std::string& key, double* out) {
  if (!v.is_number()) return TypeError(key, "a number");
  *out = v.get<double>();
  if (!std::isfinite(*out)) return TypeError(key, "finite");
  return absl::OkStatus();
}

absl::Status ReadInt(const json& v, const std::string& key, int64_t* out) {
  if (!v.is_number_integer()) return TypeError(key, "an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return TypeError(key, "an int64");
  }
  *out = v.get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadTriple(const json& v, const std::string& key, std::array<double, 3>* out) {
  if (!v.is_array() || v.size() != 3) return TypeError(key, "an array of 3 numbers");
  for (size_t i = 0; i < 3; ++i) {
    RETURN_IF_ERROR(ReadDouble(v[i], absl::StrCat(key, "[", i, "]"), &(*out)[i]));
  }
  return absl::OkStatus();
}

absl::Status MergeAugment(const json& patch, image::AugmentOptions* a) {
  if (!patch.is_object()) return TypeError("augment", "an object");
  for (const auto& [key, v] : patch.items()) {
    const std::string k = "augment." + key;
    if (key == "size") {
      RETURN_IF_ERROR(ReadInt(v, k, &a->size));
    } else if (key == "min_crop_scale" || key == "scale_min") {
      RETURN_IF_ERROR(ReadDouble(v, k, &a->min_crop_scale));
    } else if (key == "max_crop_scale" || key == "scale_max") {
      RETURN_IF_ERROR(ReadDouble(v, k, &a->max_crop_scale));
    } else if (key == "ratio_min") {
      RETURN_IF_ERROR(ReadDouble(v, k, &a->ratio_min));
    } else if (key == "ratio_max") {
      RETURN_IF_ERROR(ReadDouble(v, k, &a->ratio_max));
    } else if (key == "flip_probability") {
      RETURN_IF_ERROR(ReadDouble(v, k, &a->flip_probability));
    } else if (key == "mean") {
      RETURN_IF_ERROR(ReadTriple(v, k, &a->norm.mean));
    } else if (key == "std") {
      RETURN_IF_ERROR(ReadTriple(v, k, &a->norm.std));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("train config: unknown key '", k, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const char* ModelSelectionName(ModelSelection selection) {
  return selection == ModelSelection::kBestValidation ? kSelectionBestVal.data()
                                                      : kSelectionLast.data();
}

absl::StatusOr<ModelSelection> ModelSelectionFromName(absl::string_view name) {
  // last_epoch / best_validation: the names files written before the
  // rename carry.
  const std::string_view n(name.data(), name.size());
  if (n == kSelectionLast || n == "last_epoch") return ModelSelection::kLastEpoch;
  if (n == kSelectionBestVal || n == "best_validation") {
    return ModelSelection::kBestValidation;
  }
  return absl::InvalidArgumentError(absl::StrCat("selection must be ", kSelectionLast.data(),
                                                 " or ", kSelectionBestVal.data(), ", got '", name,
                                                 "'"));
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.emplace_back(p.name);  // std::string from string_view
  return names;
}

absl::StatusOr<TrainConfig> PresetConfig(absl::string_view name) {
  for (const auto& p : kPresets) {
    if (std::string_view(name.data(), name.size()) == p.name) return FromSpec(p);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown training preset '", name,
                   "' (expected one of: ", absl::StrJoin(PresetNames(), ", "), ")"));
}

absl::StatusOr<TrainConfig> PresetForShots(int64_t shots, bool no_ref) {
  if (shots != 1 && shots != 2 && shots != 4 && shots != 8 && shots != 16) {
    return absl::InvalidArgumentError(absl::StrCat("shots must be 1, 2, 4, 8 or 16, got ", shots));
  }
  if (no_ref && shots > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("no no-Ref recipe for ", shots, " shots (only 1, 2 and 4 have one)"));
  }
  return PresetConfig(absl::StrCat("few_shot_", shots, no_ref ? "_no_ref" : ""));
}

absl::StatusOr<TrainConfig> ConfigFromResolved(const ResolvedHyperparameters& r) {
  RETURN_IF_ERROR(ValidateHyperparameters(r));
  ASSIGN_OR_RETURN(TrainConfig c, PresetConfig(r.preset));
  ASSIGN_OR_RETURN(provp::Variant variant, provp::VariantFromName(r.variant));
  c.model = provp::DefaultOptionsFor(variant);
  c.model.num_prompts = r.num_prompts;
  c.model.depth = r.depth;
  c.model.alpha = r.alpha;
  c.model.ref_lambda = r.ref_lambda;
  c.shots = r.shots;
  c.epochs = r.epochs;
  c.learning_rate = r.learning_rate;
  c.batch_size = r.batch_size;
  c.weight_decay = r.weight_decay;
  c.augment.min_crop_scale = r.min_crop_scale;
  c.seed = static_cast<uint64_t>(r.seed);
  ASSIGN_OR_RETURN(c.selection, ModelSelectionFromName(r.selection));
  RETURN_IF_ERROR(ValidateConfig(c));
  return c;
}

ResolvedHyperparameters ResolvedFromConfig(const TrainConfig& c) {
  ResolvedHyperparameters r;
  r.preset = c.preset;
  r.variant = provp::VariantName(c.model.variant);
  r.shots = c.shots;
  r.num_prompts = c.model.num_prompts;
  r.depth = c.model.depth;
  r.epochs = c.epochs;
  r.learning_rate = c.learning_rate;
  r.batch_size = c.batch_size;
  r.alpha = c.model.alpha;
  r.ref_lambda = c.model.ref_lambda;
  r.use_ref = c.model.ref_lambda > 0.0;
  r.weight_decay = c.weight_decay;
  r.min_crop_scale = c.augment.min_crop_scale;
  r.seed = static_cast<int64_t>(c.seed);
  r.selection = ModelSelectionName(c.selection);
  return r;
}

absl::Status ValidateConfig(const TrainConfig& c) {
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError("train config: " + what);
  };
  if (c.epochs < 0 || c.epochs > kMaxEpochs)
    return bad(absl::StrCat("epochs must be in [0, ", kMaxEpochs, "]"));
  if (!(c.learning_rate > 0.0 && c.learning_rate <= kMaxLearningRate))
    return bad(absl::StrCat("lr must be in (0, ", kMaxLearningRate, "]"));
  if (!(c.momentum >= 0.0 && c.momentum < 1.0)) return bad("momentum must be in [0, 1)");
  if (!(c.weight_decay >= 0.0 && std::isfinite(c.weight_decay)))
    return bad("weight_decay must be >= 0");
  if (!(c.warmup_lr > 0.0 && std::isfinite(c.warmup_lr)))
    return bad("warmup_lr must be finite and > 0");
  if (c.warmup_epochs < 0 || c.warmup_epochs > c.epochs)
    return bad("warmup_epochs must be in [0, epochs]");
  if (c.batch_size < 1 || c.batch_size > kMaxBatchSize)
    return bad(absl::StrCat("batch_size must be in [1, ", kMaxBatchSize, "]"));
  if (c.shots < 0) return bad("shots must be >= 0");
  const auto& a = c.augment;
  if (a.size < 0 || a.size > kMaxAugmentSize)
    return bad(absl::StrCat("augment.size must be in [0, ", kMaxAugmentSize, "]"));
  if (!(a.min_crop_scale > 0.0 && a.min_crop_scale <= a.max_crop_scale &&
        a.max_crop_scale <= 1.0)) {
    return bad("augment scale must satisfy 0 < min_crop_scale <= max_crop_scale <= 1");
  }
  if (!(a.ratio_min > 0.0 && a.ratio_min <= a.ratio_max))
    return bad("augment ratio must satisfy 0 < ratio_min <= ratio_max");
  if (!(a.flip_probability >= 0.0 && a.flip_probability <= 1.0))
    return bad("augment.flip_probability must be in [0, 1]");
  for (double s : a.norm.std) {
    if (!(s > 0.0)) return bad("augment.std entries must be > 0");
  }
  // Model-side ranges that do not depend on the backbone.
  return provp::ResolveOptions(c.model, /*vision_layers=*/std::max<int64_t>(1, c.model.depth))
      .status();
}

LrScheduleOptions ScheduleOf(const TrainConfig& c) {
  LrScheduleOptions s;
  s.base_lr = c.learning_rate;
  s.epochs = c.epochs;
  s.warmup_lr = c.warmup_lr;
  s.warmup_epochs = c.warmup_epochs;
  return s;
}

json ConfigToJson(const TrainConfig& c) {
  const auto& a = c.augment;
  return json{
      {"preset", c.preset},
      {"variant", provp::VariantName(c.model.variant)},
      {"num_prompts", c.model.num_prompts},
      {"depth", c.model.depth},
      {"alpha", c.model.alpha},
      {"ref_lambda", c.model.ref_lambda},
      {"temperature", c.model.temperature},
      {"init_bound", c.model.init_bound},
      {"shots", c.shots},
      {"epochs", c.epochs},
      {"learning_rate", c.learning_rate},
      {"momentum", c.momentum},
      {"weight_decay", c.weight_decay},
      {"warmup_lr", c.warmup_lr},
      {"warmup_epochs", c.warmup_epochs},
      {"batch_size", c.batch_size},
      {"seed", c.seed},
      {"selection", ModelSelectionName(c.selection)},
      {"augment",
       {{"size", a.size},
        {"min_crop_scale", a.min_crop_scale},
        {"max_crop_scale", a.max_crop_scale},
        {"ratio_min", a.ratio_min},
        {"ratio_max", a.ratio_max},
        {"flip_probability", a.flip_probability},
        {"mean", a.norm.mean},
        {"std", a.norm.std}}},
  };
}

absl::StatusOr<TrainConfig> MergeConfigJson(const TrainConfig& base, const json& patch) {
  if (!patch.is_object()) return absl::InvalidArgumentError("train config: JSON must be an object");
  TrainConfig c = base;
  // A preset or variant resets what it defines before the other keys apply,
  // so {"preset": "few_shot_4", "epochs": 10} means "that recipe, 10 epochs"
  // and {"variant": "vpt_deep"} really gets alpha 0.
  if (auto it = patch.find("preset"); it != patch.end()) {
    if (!it->is_string()) return TypeError("preset", "a string");
    if (!it->get<std::string>().empty()) {
      ASSIGN_OR_RETURN(c, PresetConfig(it->get<std::string>()));
    }
  }
  if (auto it = patch.find("variant"); it != patch.end()) {
    if (!it->is_string()) return TypeError("variant", "a string");
    ASSIGN_OR_RETURN(provp::Variant v, provp::VariantFromName(it->get<std::string>()));
    const int64_t m = c.model.num_prompts;
    c.model = provp::DefaultOptionsFor(v);
    if (v != provp::Variant::kZeroShot && m > 0) c.model.num_prompts = m;
  }
  // Keys are the hyperparameter names of core/train/hyperparameters.h; the
  // names written before they were unified (lr, lambda_ref, scale_min,
  // scale_max) are still read, so older config files and checkpoints load.
  for (const auto& [key, v] : patch.items()) {
    if (key == "preset" || key == "variant") continue;
    if (key == "num_prompts") {
      RETURN_IF_ERROR(ReadInt(v, key, &c.model.num_prompts));
    } else if (key == "depth") {
      RETURN_IF_ERROR(ReadInt(v, key, &c.model.depth));
    } else if (key == "alpha") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.model.alpha));
    } else if (key == "ref_lambda" || key == "lambda_ref") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.model.ref_lambda));
    } else if (key == "temperature") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.model.temperature));
    } else if (key == "init_bound") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.model.init_bound));
    } else if (key == "shots") {
      RETURN_IF_ERROR(ReadInt(v, key, &c.shots));
    } else if (key == "epochs") {
      RETURN_IF_ERROR(ReadInt(v, key, &c.epochs));
    } else if (key == "learning_rate" || key == "lr") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.learning_rate));
    } else if (key == "momentum") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.momentum));
    } else if (key == "weight_decay") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.weight_decay));
    } else if (key == "warmup_lr") {
      RETURN_IF_ERROR(ReadDouble(v, key, &c.warmup_lr));
    } else if (key == "warmup_epochs") {
      RETURN_IF_ERROR(ReadInt(v, key, &c.warmup_epochs));
    } else if (key == "batch_size") {
      RETURN_IF_ERROR(ReadInt(v, key, &c.batch_size));
    } else if (key == "seed") {
      if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0)) {
        return TypeError(key, "a non-negative integer");
      }
      c.seed = v.get<uint64_t>();
    } else if (key == "selection") {
      if (!v.is_string()) return TypeError(key, "a string");
      absl::StatusOr<ModelSelection> selection = ModelSelectionFromName(v.get<std::string>());
      if (!selection.ok()) return TypeError(key, "\"last\" or \"best_val\"");
      c.selection = *selection;
    } else if (key == "augment") {
      RETURN_IF_ERROR(MergeAugment(v, &c.augment));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("train config: unknown key '", key, "'"));
    }
  }
  RETURN_IF_ERROR(ValidateConfig(c));
  return c;
}

absl::StatusOr<TrainConfig> ConfigFromJson(const json& j) {
  return MergeConfigJson(TrainConfig{}, j);
}

}  // namespace provp::train
