// SaveTrainCheckpoint / LoadTrainCheckpoint on top of the tensor file.
#include "core/train/checkpoint.h"

#include "absl/strings/str_cat.h"
#include "core/train/tensor_file.h"
#include "core/util/status_macros.h"

namespace provp::train {
namespace {

constexpr char kMetadataKey[] = "provp.train_checkpoint";
constexpr int kFormatVersion = 1;

absl::Status Bad(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("checkpoint ", path, ": ", what));
}

}  // namespace

absl::Status SaveTrainCheckpoint(const std::string& path, const TrainCheckpoint& ck,
                                 util::Env* env) {
  if (!ck.prompts.defined()) return absl::InvalidArgumentError("checkpoint: prompts are undefined");
  TensorFile file;
  file.tensors["prompts"] = ck.prompts;
  if (ck.momentum_buffer.defined()) file.tensors["momentum_buffer"] = ck.momentum_buffer;
  if (ck.best_prompts.defined()) file.tensors["best_prompts"] = ck.best_prompts;
  nlohmann::json meta = {{"format_version", kFormatVersion},
                         {"epochs_completed", ck.epochs_completed},
                         {"global_step", ck.global_step},
                         {"rng_state", ck.rng_state},
                         {"config", ConfigToJson(ck.config)},
                         {"backbone_fingerprint", ck.backbone_fingerprint},
                         {"data_fingerprint", ck.data_fingerprint},
                         {"best_epoch", ck.best_epoch},
                         {"best_validation_accuracy", ck.best_validation_accuracy},
                         {"history", ck.history}};
  file.metadata[kMetadataKey] = meta.dump();
  return WriteTensorFile(path, file, env);
}

absl::StatusOr<TrainCheckpoint> LoadTrainCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(TensorFile file, ReadTensorFile(path));
  ASSIGN_OR_RETURN(const nlohmann::json meta,
                   ReadVersionedMetadata(file, kMetadataKey, kFormatVersion, "checkpoint", path));
  TrainCheckpoint ck;
  auto get_int = [&](const char* key, int64_t* out) -> absl::Status {
    auto f = meta.find(key);
    if (f == meta.end() || !f->is_number_integer())
      return Bad(path, absl::StrCat("'", key, "' missing or not an integer"));
    *out = f->get<int64_t>();
    return absl::OkStatus();
  };
  auto get_string = [&](const char* key, std::string* out) -> absl::Status {
    auto f = meta.find(key);
    if (f == meta.end() || !f->is_string())
      return Bad(path, absl::StrCat("'", key, "' missing or not a string"));
    *out = f->get<std::string>();
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(get_int("epochs_completed", &ck.epochs_completed));
  RETURN_IF_ERROR(get_int("global_step", &ck.global_step));
  RETURN_IF_ERROR(get_int("best_epoch", &ck.best_epoch));
  RETURN_IF_ERROR(get_string("rng_state", &ck.rng_state));
  RETURN_IF_ERROR(get_string("backbone_fingerprint", &ck.backbone_fingerprint));
  RETURN_IF_ERROR(get_string("data_fingerprint", &ck.data_fingerprint));
  if (ck.epochs_completed < 0) return Bad(path, "epochs_completed is negative");
  auto acc = meta.find("best_validation_accuracy");
  if (acc == meta.end() || !acc->is_number())
    return Bad(path, "'best_validation_accuracy' missing");
  ck.best_validation_accuracy = acc->get<double>();
  auto cfg = meta.find("config");
  if (cfg == meta.end()) return Bad(path, "'config' missing");
  auto config = ConfigFromJson(*cfg);
  if (!config.ok()) return Bad(path, std::string(config.status().message()));
  ck.config = *std::move(config);
  auto hist = meta.find("history");
  if (hist == meta.end() || !hist->is_array())
    return Bad(path, "'history' missing or not an array");
  ck.history = *hist;

  auto prompts = file.tensors.find("prompts");
  if (prompts == file.tensors.end()) return Bad(path, "tensor 'prompts' missing");
  if (prompts->second.dim() != 3 || prompts->second.scalar_type() != torch::kFloat32) {
    return Bad(path, "tensor 'prompts' must be fp32 [depth,m,width]");
  }
  ck.prompts = prompts->second;
  for (const char* name : {"momentum_buffer", "best_prompts"}) {
    auto t = file.tensors.find(name);
    if (t == file.tensors.end()) continue;
    if (t->second.sizes() != ck.prompts.sizes() || t->second.scalar_type() != torch::kFloat32) {
      return Bad(path, absl::StrCat("tensor '", name, "' must match the prompts' shape"));
    }
    (std::string(name) == "momentum_buffer" ? ck.momentum_buffer : ck.best_prompts) = t->second;
  }
  return ck;
}

}  // namespace provp::train
