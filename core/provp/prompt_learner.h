// The only trainable tensor of ProVP-Ref: P in R^{depth x m x width}, one
// m-token prompt per prompted vision layer, held in fp32 (master copy even
// when the backbone runs in bf16/fp16). Initialised U(-b, b) from a seeded
// host generator, so the init is identical on every device and LibTorch
// version. Not thread-safe for mutation (training owns it).
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "core/clip/clip_model.h"

namespace provp::provp {

struct PromptLearnerOptions {
  // Prompted layers (1..vision_layers).
  int64_t depth = 12;
  // Tokens per layer (m).
  int64_t length = 50;
  // Vision transformer width (768 for ViT-B/16).
  int64_t width = 768;
  // Half-width of the uniform init; 0 = ReferenceInitBound(width).
  double init_bound = 0.0;
  // Seed of the init generator (std::mt19937_64).
  uint64_t seed = 0;
  // Device of the parameter; it stays fp32.
  torch::Device device = torch::kCPU;
};

class PromptLearnerImpl : public torch::nn::Module {
 public:
  explicit PromptLearnerImpl(const PromptLearnerOptions& options);

  // The parameter itself, registered as "prompts": fp32 [depth, m, width].
  const torch::Tensor& prompts() const { return prompts_; }

  // What ClipModel::EncodeImage takes; the tensor is the parameter itself
  // (not a copy), so gradients reach it.
  clip::VisualPrompts ForForward(double alpha) const;

  // Overwrites the values (resume, loading a prompt set). Shape must match;
  // INVALID_ARGUMENT names the expected and found shapes otherwise.
  absl::Status SetValues(const torch::Tensor& values);

  const PromptLearnerOptions& options() const { return options_; }
  double init_bound() const { return bound_; }

 private:
  PromptLearnerOptions options_;
  double bound_ = 0.0;
  torch::Tensor prompts_;
};
TORCH_MODULE(PromptLearner);

}  // namespace provp::provp
