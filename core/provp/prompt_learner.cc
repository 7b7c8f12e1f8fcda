// PromptLearner: seeded uniform init on the host, value checks on set.
#include "core/provp/prompt_learner.h"

#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/provp/provp_options.h"
#include "core/util/torch_status.h"

namespace provp::provp {
namespace {

std::string ShapeString(torch::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) absl::StrAppend(&out, i ? "," : "", sizes[i]);
  return out + "]";
}

}  // namespace

PromptLearnerImpl::PromptLearnerImpl(const PromptLearnerOptions& options) : options_(options) {
  TORCH_CHECK(options.depth >= 1 && options.length >= 1 && options.width >= 1,
              "PromptLearner needs depth, length and width >= 1");
  bound_ = options.init_bound > 0.0 ? options.init_bound : ReferenceInitBound(options.width);
  const int64_t count = options.depth * options.length * options.width;
  // A host generator keeps the init independent of torch's global RNG and
  // of the device, so a seed names one prompt init everywhere.
  std::mt19937_64 rng(options.seed);
  std::vector<float> values(static_cast<size_t>(count));
  // 53-bit uniform in [0,1) built by hand: std::uniform_real_distribution's
  // output is not specified bit-for-bit across standard libraries.
  for (float& v : values) {
    const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
    v = static_cast<float>((2.0 * u - 1.0) * bound_);
  }
  torch::Tensor init =
      torch::from_blob(values.data(), {options.depth, options.length, options.width},
                       torch::kFloat32)
          .clone()
          .to(options.device);
  prompts_ = register_parameter("prompts", init);
}

clip::VisualPrompts PromptLearnerImpl::ForForward(double alpha) const {
  clip::VisualPrompts p;
  p.prompts = prompts_;
  p.alpha = alpha;
  return p;
}

absl::Status PromptLearnerImpl::SetValues(const torch::Tensor& values) {
  if (!values.defined() || values.sizes() != prompts_.sizes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt values have shape ", values.defined() ? ShapeString(values.sizes()) : "<undefined>",
        ", expected [depth,m,width] = ", ShapeString(prompts_.sizes())));
  }
  return util::TorchCall("PromptLearner::SetValues", [&] {
    torch::NoGradGuard no_grad;
    prompts_.copy_(values.to(prompts_.device(), torch::kFloat32));
  });
}

}  // namespace provp::provp
