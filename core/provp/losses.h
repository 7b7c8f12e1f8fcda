// The ProVP-Ref training objective (METHOD.md section 4), computed in fp32
// whatever the backbone dtype:
//   L = CE(exp(logit_scale) * norm(f) . norm(T)^T, y)
//     + lambda * CE(norm(f) . norm(g)^T / tau, arange(B))
// f = prompted image features, g = frozen (no-prompt) features of the same
// augmented batch (no gradient), T = fixed class text features. The Ref term
// runs one way (rows = prompted, columns = frozen), as the reference does.
// Stateless; thread-safe.
#pragma once

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace provp::provp {

struct LossOptions {
  // Weight of the Ref term; 0 skips it (frozen features may be undefined).
  double ref_lambda = 1.0;
  // Ref temperature (reference: 1, i.e. raw cosines).
  double temperature = 1.0;
};

struct LossTerms {
  torch::Tensor logits;  // [B,C] fp32, exp(logit_scale) * cosines.
  torch::Tensor ce;      // scalar fp32, mean over the batch.
  torch::Tensor ref;     // scalar fp32; 0 when ref_lambda == 0.
  torch::Tensor total;   // ce + ref_lambda * ref; backward() from here.
};

// student [B,D] (any float dtype, with grad), frozen [B,D] (ignored when
// ref_lambda == 0), text [C,D], labels int64 [B] in [0,C), logit_scale =
// the multiplier exp(stored value) (100 for OpenAI CLIP). Inputs need not be
// normalised. Shape, label-range and option errors are INVALID_ARGUMENT.
absl::StatusOr<LossTerms> ComputeLosses(const torch::Tensor& student, const torch::Tensor& frozen,
                                        const torch::Tensor& text, const torch::Tensor& labels,
                                        double logit_scale, const LossOptions& options);

// x / ||x|| along the last dim, in fp32 (the reference's division, no eps).
torch::Tensor L2Normalize(const torch::Tensor& x);

}  // namespace provp::provp
