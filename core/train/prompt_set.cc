// Prompt-set file writing, reading and compatibility checks.
#include "core/train/prompt_set.h"

#include "absl/strings/str_cat.h"
#include "core/train/tensor_file.h"
#include "core/util/error_reason.h"
#include "core/util/status_macros.h"

namespace provp::train {
namespace {

constexpr char kMetadataKey[] = "provp.prompt_set";
constexpr int kFormatVersion = 1;
// Class lists beyond this are not a few-shot task (ImageNet-21k has ~21.8k).
constexpr size_t kMaxClasses = 100000;

absl::Status Bad(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("prompt set ", path, ": ", what));
}

nlohmann::json ModelToJson(const provp::ProvpOptions& m) {
  return {{"variant", provp::VariantName(m.variant)},
          {"num_prompts", m.num_prompts},
          {"depth", m.depth},
          {"alpha", m.alpha},
          {"ref_lambda", m.ref_lambda},
          {"temperature", m.temperature},
          {"init_bound", m.init_bound}};
}

absl::Status StringList(const nlohmann::json& meta, const char* key, const std::string& path,
                        std::vector<std::string>* out) {
  auto it = meta.find(key);
  if (it == meta.end() || !it->is_array() || it->size() > kMaxClasses) {
    return Bad(path, absl::StrCat("'", key, "' missing or not a list"));
  }
  for (const auto& v : *it) {
    if (!v.is_string()) return Bad(path, absl::StrCat("'", key, "' entries must be strings"));
    out->push_back(v.get<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SavePromptSet(const std::string& path, const PromptSet& set, util::Env* env) {
  const auto& info = set.info;
  TensorFile file;
  if (info.model.variant != provp::Variant::kZeroShot) {
    if (!set.prompts.defined() || set.prompts.dim() != 3) {
      return absl::InvalidArgumentError("prompt set: prompts must be [depth,m,width]");
    }
    file.tensors["prompts"] = set.prompts;
  }
  nlohmann::json meta = {{"format_version", kFormatVersion},
                         {"model", ModelToJson(info.model)},
                         {"hyperparameters", info.hyperparameters},
                         {"templates", info.templates},
                         {"class_names", info.class_names},
                         {"backbone_fingerprint", info.backbone_fingerprint},
                         {"vision_width", info.vision_width},
                         {"vision_layers", info.vision_layers},
                         {"training_summary", info.training_summary},
                         {"evaluation", info.evaluation}};
  file.metadata[kMetadataKey] = meta.dump();
  return WriteTensorFile(path, file, env);
}

absl::StatusOr<PromptSet> ReadPromptSet(const std::string& path) {
  ASSIGN_OR_RETURN(TensorFile file, ReadTensorFile(path));
  ASSIGN_OR_RETURN(const nlohmann::json meta,
                   ReadVersionedMetadata(file, kMetadataKey, kFormatVersion, "prompt set", path));
  PromptSet set;
  PromptSetInfo& info = set.info;
  auto model = meta.find("model");
  if (model == meta.end() || !model->is_object()) return Bad(path, "'model' missing");
  // The model block uses TrainConfig's key names, so the same parser checks
  // names, types and ranges.
  auto parsed = MergeConfigJson(TrainConfig{}, *model);
  if (!parsed.ok()) return Bad(path, std::string(parsed.status().message()));
  info.model = parsed->model;
  for (const char* key : {"vision_width", "vision_layers"}) {
    auto f = meta.find(key);
    if (f == meta.end() || !f->is_number_integer() || f->get<int64_t>() < 0) {
      return Bad(path, absl::StrCat("'", key, "' missing or not a non-negative integer"));
    }
  }
  info.vision_width = meta["vision_width"].get<int64_t>();
  info.vision_layers = meta["vision_layers"].get<int64_t>();
  RETURN_IF_ERROR(StringList(meta, "templates", path, &info.templates));
  RETURN_IF_ERROR(StringList(meta, "class_names", path, &info.class_names));
  auto fp = meta.find("backbone_fingerprint");
  if (fp == meta.end() || !fp->is_string()) return Bad(path, "'backbone_fingerprint' missing");
  info.backbone_fingerprint = fp->get<std::string>();
  info.hyperparameters = meta.value("hyperparameters", nlohmann::json::object());
  info.training_summary = meta.value("training_summary", nlohmann::json::object());
  info.evaluation = meta.value("evaluation", nlohmann::json::object());

  auto prompts = file.tensors.find("prompts");
  if (info.model.variant == provp::Variant::kZeroShot) {
    if (prompts != file.tensors.end())
      return Bad(path, "a zero_shot prompt set must not hold prompts");
    return set;
  }
  if (prompts == file.tensors.end()) return Bad(path, "tensor 'prompts' missing");
  const torch::Tensor& p = prompts->second;
  if (p.dim() != 3 || p.scalar_type() != torch::kFloat32) {
    return Bad(path, "tensor 'prompts' must be fp32 [depth,m,width]");
  }
  if (p.size(0) != info.model.depth || p.size(1) != info.model.num_prompts ||
      p.size(2) != info.vision_width) {
    return Bad(path,
               absl::StrCat("tensor 'prompts' is [", p.size(0), ",", p.size(1), ",", p.size(2),
                            "] but the metadata says depth ", info.model.depth, ", num_prompts ",
                            info.model.num_prompts, ", vision_width ", info.vision_width));
  }
  set.prompts = p;
  return set;
}

absl::Status CheckPromptSetMatches(const PromptSet& set, const clip::ClipConfig& config,
                                   const std::string& fingerprint) {
  const auto& info = set.info;
  if (!info.backbone_fingerprint.empty() && !fingerprint.empty() &&
      info.backbone_fingerprint != fingerprint) {
    return util::WithErrorReason(
        absl::FailedPreconditionError(absl::StrCat("prompt set was trained on backbone ",
                                                   info.backbone_fingerprint,
                                                   ", but the loaded backbone is ", fingerprint)),
        util::kReasonBackboneMismatch);
  }
  if (info.model.variant == provp::Variant::kZeroShot) return absl::OkStatus();
  if (!set.prompts.defined() || set.prompts.dim() != 3) {
    return util::WithErrorReason(
        absl::FailedPreconditionError("prompt set holds no [depth,m,width] prompts"),
        util::kReasonPromptShapeMismatch);
  }
  if (set.prompts.size(2) != config.vision_width) {
    return util::WithErrorReason(
        absl::FailedPreconditionError(absl::StrCat("prompt width ", set.prompts.size(2),
                                                   " does not match the backbone's vision width ",
                                                   config.vision_width)),
        util::kReasonPromptShapeMismatch);
  }
  if (set.prompts.size(0) > config.vision_layers) {
    return util::WithErrorReason(
        absl::FailedPreconditionError(absl::StrCat("prompt depth ", set.prompts.size(0),
                                                   " exceeds the backbone's ", config.vision_layers,
                                                   " vision layers")),
        util::kReasonPromptShapeMismatch);
  }
  return absl::OkStatus();
}

absl::StatusOr<PromptSet> LoadPromptSet(const std::string& path, const clip::ClipConfig& config,
                                        const std::string& fingerprint) {
  ASSIGN_OR_RETURN(PromptSet set, ReadPromptSet(path));
  absl::Status s = CheckPromptSetMatches(set, config, fingerprint);
  if (!s.ok()) return util::WithMessage(s, absl::StrCat("prompt set ", path, ": ", s.message()));
  return set;
}

PromptSet PromptSetFromRun(const provp::ProvpOptions& resolved_model, const TrainConfig& config,
                           const TrainResult& result, const clip::ClipConfig& clip_config,
                           const std::string& backbone_fingerprint,
                           const std::vector<std::string>& class_names,
                           const std::vector<std::string>& templates) {
  PromptSet set;
  set.prompts = result.prompts;
  set.info.model = resolved_model;
  set.info.hyperparameters = ConfigToJson(config);
  set.info.templates = templates;
  set.info.class_names = class_names;
  set.info.backbone_fingerprint = backbone_fingerprint;
  set.info.vision_width = clip_config.vision_width;
  set.info.vision_layers = clip_config.vision_layers;
  set.info.training_summary = {{"epochs_completed", result.epochs_completed},
                               {"selected_epoch", result.selected_epoch},
                               {"selection", ModelSelectionName(config.selection)},
                               {"final_loss", result.final_loss},
                               {"final_ce", result.final_ce},
                               {"final_ref", result.final_ref},
                               {"final_train_accuracy", result.final_train_accuracy},
                               {"best_validation_accuracy", result.best_validation_accuracy},
                               {"seconds", result.seconds},
                               {"images_per_second", result.images_per_second}};
  return set;
}

}  // namespace provp::train
