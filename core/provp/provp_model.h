// A frozen CLIP plus the learnable prompts: the ProVP-Ref student and, with
// the prompts switched off, its own teacher. One shared frozen backbone
// serves both passes (the reference loads a second copy, METHOD.md Q18): the
// teacher pass runs under NoGradGuard, the student pass keeps autograd on so
// gradients reach the prompts through the frozen ViT.
// Not thread-safe for training; concurrent const-style evaluation is up to
// the caller (share the ClipModel under InferenceMode instead).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clip/clip_model.h"
#include "core/provp/losses.h"
#include "core/provp/prompt_learner.h"
#include "core/provp/provp_options.h"

namespace provp::provp {

class ProvpModel {
 public:
  // `clip` should already be frozen (BuildClipModel/BuildRandomClipModel do
  // it; Create freezes it again to be sure). `options` are resolved against
  // the vision tower; `seed` seeds the prompt init. Prompts live on the
  // backbone's device in fp32.
  static absl::StatusOr<std::unique_ptr<ProvpModel>> Create(clip::ClipModel clip,
                                                            const ProvpOptions& options,
                                                            uint64_t seed);

  // [B,3,R,R] normalised images (any float dtype/device; moved to the
  // model's) -> [B,embed_dim] prompted features, model dtype, not normalised,
  // differentiable w.r.t. the prompts. Zero-shot: the frozen features.
  absl::StatusOr<torch::Tensor> EncodeImages(const torch::Tensor& images);

  // Same images without prompts, under NoGradGuard: the Ref target.
  absl::StatusOr<torch::Tensor> EncodeFrozen(const torch::Tensor& images);

  // The training objective on one augmented batch: student forward, frozen
  // forward (only when ref_lambda > 0), ComputeLosses in fp32.
  // text_features [C,embed_dim], labels int64 [B].
  absl::StatusOr<LossTerms> Loss(const torch::Tensor& images, const torch::Tensor& labels,
                                 const torch::Tensor& text_features);

  // Replaces the prompt values (checked shape). FAILED_PRECONDITION for
  // zero_shot, which has none.
  absl::Status SetPrompts(const torch::Tensor& values);

  // The prompts as EncodeImage takes them, or nullptr for zero_shot. Valid
  // while this model lives.
  const clip::VisualPrompts* visual_prompts() const {
    return learner_ ? &visual_prompts_ : nullptr;
  }
  // Trainable parameters (the prompt tensor), empty for zero_shot.
  std::vector<torch::Tensor> trainable_parameters() const;
  // The prompt module, or an empty holder for zero_shot.
  PromptLearner learner() const { return learner_; }

  clip::ClipModel& clip() { return clip_; }
  const ProvpOptions& options() const { return options_; }
  double logit_scale() const { return logit_scale_; }
  torch::Device device() const { return device_; }
  torch::Dtype dtype() const { return dtype_; }

 private:
  ProvpModel(clip::ClipModel clip, const ProvpOptions& options, PromptLearner learner,
             torch::Device device, torch::Dtype dtype, double logit_scale);

  torch::Tensor ToModelInput(const torch::Tensor& images) const;

  clip::ClipModel clip_;
  ProvpOptions options_;
  PromptLearner learner_{nullptr};
  clip::VisualPrompts visual_prompts_;
  torch::Device device_;
  torch::Dtype dtype_;
  double logit_scale_;
};

}  // namespace provp::provp
