// ComputeLosses: shape checks, then the fp32 CE + Ref math.
#include "core/provp/losses.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/util/torch_status.h"

namespace provp::provp {

torch::Tensor L2Normalize(const torch::Tensor& x) {
  torch::Tensor f = x.to(torch::kFloat32);
  return f / f.norm(2, {-1}, /*keepdim=*/true);
}

absl::StatusOr<LossTerms> ComputeLosses(const torch::Tensor& student, const torch::Tensor& frozen,
                                        const torch::Tensor& text, const torch::Tensor& labels,
                                        double logit_scale, const LossOptions& options) {
  if (!student.defined() || student.dim() != 2 || student.size(0) < 1) {
    return absl::InvalidArgumentError("loss: student features must be [B,D] with B >= 1");
  }
  const int64_t batch = student.size(0);
  const int64_t dim = student.size(1);
  if (!text.defined() || text.dim() != 2 || text.size(1) != dim || text.size(0) < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("loss: text features must be [C,", dim, "] with C >= 1"));
  }
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != batch) {
    return absl::InvalidArgumentError(absl::StrCat("loss: labels must be [", batch, "]"));
  }
  if (!(options.ref_lambda >= 0.0) || !(options.temperature > 0.0) || !std::isfinite(logit_scale)) {
    return absl::InvalidArgumentError(
        "loss: ref_lambda must be >= 0, temperature > 0, logit_scale finite");
  }
  const bool use_ref = options.ref_lambda > 0.0;
  if (use_ref && (!frozen.defined() || frozen.sizes() != student.sizes())) {
    return absl::InvalidArgumentError(
        absl::StrCat("loss: frozen features must be [", batch, ",", dim, "] when ref_lambda > 0"));
  }
  return util::TorchCall("ComputeLosses", [&]() -> absl::StatusOr<LossTerms> {
    torch::Tensor y = labels.to(student.device(), torch::kInt64);
    const int64_t num_classes = text.size(0);
    if (batch > 0) {
      const int64_t lo = y.min().item<int64_t>();
      const int64_t hi = y.max().item<int64_t>();
      if (lo < 0 || hi >= num_classes) {
        return absl::InvalidArgumentError(absl::StrCat("loss: labels must be in [0, ", num_classes,
                                                       "), found [", lo, ", ", hi, "]"));
      }
    }
    LossTerms out;
    torch::Tensor s = L2Normalize(student);
    torch::Tensor t = L2Normalize(text.to(student.device()));
    out.logits = logit_scale * torch::matmul(s, t.t());
    out.ce = torch::nn::functional::cross_entropy(out.logits, y);
    if (use_ref) {
      // The teacher is a constant target: detached even if the caller
      // forgot the NoGradGuard.
      torch::Tensor g = L2Normalize(frozen.to(student.device()).detach());
      torch::Tensor sim = torch::matmul(s, g.t());
      if (options.temperature != 1.0) sim = sim / options.temperature;
      torch::Tensor targets = torch::arange(batch, y.options());
      out.ref = torch::nn::functional::cross_entropy(sim, targets);
      out.total = out.ce + options.ref_lambda * out.ref;
    } else {
      out.ref = torch::zeros({}, out.ce.options());
      out.total = out.ce;
    }
    return out;
  });
}

}  // namespace provp::provp
