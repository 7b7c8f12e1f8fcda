// The OpenAI CLIP architecture in LibTorch: a ViT image tower that can take
// ProVP visual prompts, and the causal text transformer. Submodule and
// parameter names equal the OpenAI checkpoint keys, so loading weights is a
// name lookup. Pre-LN blocks, QuickGELU, LayerNorm in fp32, CLS pooling with
// ln_post/proj for images, EOT pooling with ln_final/text_projection for
// text. Not thread-safe for mutation; concurrent forwards under
// InferenceMode are fine.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clip/checkpoint_loader.h"
#include "core/clip/config.h"

namespace provp::clip {

// ProVP visual prompts for one forward pass (METHOD.md section 2).
struct VisualPrompts {
  // [depth, m, vision_width]: one prompt set for the whole batch; or
  // [S, depth, m, vision_width]: S prompt sets of the same depth and m, with
  // `image_set` saying which one each image uses (a mixed-prompt-set batch:
  // images of different sets share every matrix multiply, and only the
  // prompt rows differ). depth <= vision_layers, m >= 1. Cast to the model's
  // dtype inside the forward, so an fp32 master copy is fine and gradients
  // flow back to it.
  torch::Tensor prompts;
  // Before each prompted layer l >= 1 the prompt slots become
  // alpha * (previous output) + (1 - alpha) * P_l. alpha 0 is VPT-deep.
  double alpha = 0.01;
  // With stacked sets: int64 [B], image i uses set image_set[i]; undefined
  // means image i uses set i (S == B).
  torch::Tensor image_set;
  // With stacked sets: float64 [S] alpha of each set; undefined means every
  // set uses `alpha`.
  torch::Tensor alphas;
};

class ClipModelImpl : public torch::nn::Module {
 public:
  explicit ClipModelImpl(const ClipConfig& config);

  // [B,3,R,R] normalised images -> [B,embed_dim], not normalised.
  // With prompts: [CLS, P_0, patches] after ln_pre (no positional embedding
  // on prompts), progressive rule before later prompted layers, prompt
  // tokens kept to the end, CLS pooled.
  torch::Tensor EncodeImage(const torch::Tensor& images, const VisualPrompts* prompts = nullptr);

  // [N,context_length] int64 token ids -> [N,embed_dim], not normalised.
  // Pools at the position of the largest id (the end token), as CLIP does.
  torch::Tensor EncodeText(const torch::Tensor& tokens);

  // exp(stored logit_scale) as a float.
  double LogitScale() const;

  // Copies canonical weights in (checks every name and shape; converts to
  // this model's dtype). Fails naming the offending key.
  absl::Status LoadWeights(const std::map<std::string, torch::Tensor>& weights);

  const ClipConfig& config() const { return config_; }

 private:
  ClipConfig config_;
  // Submodules registered under OpenAI names ("visual", "transformer",
  // "token_embedding", ...); see clip_model.cc.
  struct Parts;
  std::shared_ptr<Parts> parts_;
};
TORCH_MODULE(ClipModel);

struct ModelOptions {
  // "cpu", "cuda", "cuda:1".
  std::string device = "cpu";
  // Weights/activations dtype: fp32 on CPU; bf16 or fp16 on CUDA
  // (LayerNorm, softmax and logits stay fp32).
  torch::Dtype dtype = torch::kFloat32;
};

// Builds a frozen (eval, requires_grad off) model from a loaded checkpoint.
absl::StatusOr<ClipModel> BuildClipModel(const LoadedCheckpoint& checkpoint,
                                         const ModelOptions& options);

// Random-init model of the given size (tests, benchmarks), frozen likewise.
absl::StatusOr<ClipModel> BuildRandomClipModel(const ClipConfig& config,
                                               const ModelOptions& options, uint64_t seed = 0);

}  // namespace provp::clip
