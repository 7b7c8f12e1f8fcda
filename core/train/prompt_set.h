// Prompt-set files: the learned prompts of one task plus everything needed
// to serve and audit them - variant and hyperparameters, text template(s),
// class names, the backbone fingerprint they were trained on, a training
// summary and the evaluation. One safetensors file: tensor "prompts"
// (fp32 [depth,m,width]; absent for zero_shot) and a JSON document in the
// metadata key "provp.prompt_set". Loading checks the prompts against the
// serving backbone and refuses a foreign one.
// Thread-compatible (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clip/config.h"
#include "core/provp/provp_options.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"
#include "core/util/env.h"

namespace provp::train {

struct PromptSetInfo {
  // Variant and model-side hyperparameters (resolved: depth is explicit).
  provp::ProvpOptions model;
  // The full training configuration (ConfigToJson), or {} when imported.
  nlohmann::json hyperparameters = nlohmann::json::object();
  // Templates with "{}" used for the class text features.
  std::vector<std::string> templates;
  std::vector<std::string> class_names;
  // clip::LoadedCheckpoint::fingerprint of the training backbone.
  std::string backbone_fingerprint;
  // Vision tower the prompts were made for.
  int64_t vision_width = 0;
  int64_t vision_layers = 0;
  nlohmann::json training_summary = nlohmann::json::object();
  nlohmann::json evaluation = nlohmann::json::object();
};

struct PromptSet {
  torch::Tensor prompts;  // fp32 CPU [depth,m,width]; undefined for zero_shot
  PromptSetInfo info;
};

// Writes the file atomically through `env` (the old file, if any, stays
// until the new one is complete).
absl::Status SavePromptSet(const std::string& path, const PromptSet& set,
                           util::Env* env = util::Env::Default());

// Parses and checks the file on its own (shapes agree with the metadata).
// NOT_FOUND if absent; INVALID_ARGUMENT naming file and field otherwise.
absl::StatusOr<PromptSet> ReadPromptSet(const std::string& path);

// FAILED_PRECONDITION when the prompts do not fit `config` (width, depth vs
// vision layers; reason util::kReasonPromptShapeMismatch) or were trained on
// another backbone than `fingerprint` (util::kReasonBackboneMismatch; a file
// without a fingerprint is accepted: imported prompts).
absl::Status CheckPromptSetMatches(const PromptSet& set, const clip::ClipConfig& config,
                                   const std::string& fingerprint);

// ReadPromptSet + CheckPromptSetMatches.
absl::StatusOr<PromptSet> LoadPromptSet(const std::string& path, const clip::ClipConfig& config,
                                        const std::string& fingerprint);

// Assembles a prompt set from a finished run (prompts, config, summary).
PromptSet PromptSetFromRun(const provp::ProvpOptions& resolved_model, const TrainConfig& config,
                           const TrainResult& result, const clip::ClipConfig& clip_config,
                           const std::string& backbone_fingerprint,
                           const std::vector<std::string>& class_names,
                           const std::vector<std::string>& templates);

}  // namespace provp::train
