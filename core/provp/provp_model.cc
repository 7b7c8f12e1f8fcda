// ProvpModel: prompt creation, the student/teacher forwards and the loss.
#include "core/provp/provp_model.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::provp {

ProvpModel::ProvpModel(clip::ClipModel clip, const ProvpOptions& options, PromptLearner learner,
                       torch::Device device, torch::Dtype dtype, double logit_scale)
    : clip_(std::move(clip)),
      options_(options),
      learner_(std::move(learner)),
      device_(device),
      dtype_(dtype),
      logit_scale_(logit_scale) {
  if (learner_) visual_prompts_ = learner_->ForForward(options_.alpha);
}

absl::StatusOr<std::unique_ptr<ProvpModel>> ProvpModel::Create(clip::ClipModel clip,
                                                               const ProvpOptions& options,
                                                               uint64_t seed) {
  if (!clip) return absl::InvalidArgumentError("ProvpModel: no CLIP model given");
  const clip::ClipConfig& config = clip->config();
  ASSIGN_OR_RETURN(ProvpOptions resolved, ResolveOptions(options, config.vision_layers));
  return util::TorchCall(
      "ProvpModel::Create", [&]() -> absl::StatusOr<std::unique_ptr<ProvpModel>> {
        clip->eval();
        for (auto& p : clip->parameters()) p.requires_grad_(false);
        auto params = clip->parameters();
        if (params.empty())
          return absl::InvalidArgumentError("ProvpModel: CLIP model has no parameters");
        const torch::Device device = params.front().device();
        const torch::Dtype dtype = params.front().scalar_type();
        PromptLearner learner{nullptr};
        if (HasPrompts(resolved)) {
          PromptLearnerOptions po;
          po.depth = resolved.depth;
          po.length = resolved.num_prompts;
          po.width = config.vision_width;
          po.init_bound = resolved.init_bound;
          po.seed = seed;
          po.device = device;
          learner = PromptLearner(po);
        }
        const double scale = clip->LogitScale();
        return std::unique_ptr<ProvpModel>(
            new ProvpModel(std::move(clip), resolved, std::move(learner), device, dtype, scale));
      });
}

torch::Tensor ProvpModel::ToModelInput(const torch::Tensor& images) const {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "images must be [B,3,R,R], got ",
              images.sizes());
  return images.to(device_, dtype_);
}

absl::StatusOr<torch::Tensor> ProvpModel::EncodeImages(const torch::Tensor& images) {
  return util::TorchCall("ProvpModel::EncodeImages", [&] {
    return clip_->EncodeImage(ToModelInput(images), visual_prompts());
  });
}

absl::StatusOr<torch::Tensor> ProvpModel::EncodeFrozen(const torch::Tensor& images) {
  return util::TorchCall("ProvpModel::EncodeFrozen", [&] {
    torch::NoGradGuard no_grad;
    return clip_->EncodeImage(ToModelInput(images), nullptr);
  });
}

absl::StatusOr<LossTerms> ProvpModel::Loss(const torch::Tensor& images, const torch::Tensor& labels,
                                           const torch::Tensor& text_features) {
  torch::Tensor input;
  RETURN_IF_ERROR(util::TorchCall("ProvpModel::Loss", [&] { input = ToModelInput(images); }));
  ASSIGN_OR_RETURN(torch::Tensor student, EncodeImages(input));
  torch::Tensor frozen;
  if (options_.ref_lambda > 0.0) {
    ASSIGN_OR_RETURN(frozen, EncodeFrozen(input));
  }
  LossOptions lo;
  lo.ref_lambda = options_.ref_lambda;
  lo.temperature = options_.temperature;
  return ComputeLosses(student, frozen, text_features, labels, logit_scale_, lo);
}

absl::Status ProvpModel::SetPrompts(const torch::Tensor& values) {
  if (!learner_) {
    return absl::FailedPreconditionError("variant zero_shot has no prompts to set");
  }
  return learner_->SetValues(values);
}

std::vector<torch::Tensor> ProvpModel::trainable_parameters() const {
  if (!learner_) return {};
  return learner_->parameters();
}

}  // namespace provp::provp
