// Linear probe: feature extraction, the per-l2 L-BFGS fit and selection on
// the validation split.
#include "core/train/linear_probe.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::train {
namespace {

absl::Status CheckSet(const torch::Tensor& x, const std::vector<int64_t>& y, int64_t num_classes,
                      const char* what, int64_t dim) {
  if (!x.defined() || x.dim() != 2 || x.size(0) < 1 || (dim >= 0 && x.size(1) != dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat("linear probe: ", what, " features must be [N>=1, D]",
                     dim >= 0 ? absl::StrCat(" with D = ", dim) : ""));
  }
  if (static_cast<int64_t>(y.size()) != x.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("linear probe: ", what, " has ", x.size(0),
                                                   " feature rows but ", y.size(), " labels"));
  }
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] < 0 || y[i] >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("linear probe: ", what, " label ", y[i],
                                                     " of row ", i, " is outside [0, ", num_classes,
                                                     ")"));
    }
  }
  return absl::OkStatus();
}

torch::Tensor Labels(const std::vector<int64_t>& y) { return torch::tensor(y, torch::kInt64); }

double Top1(const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& x,
            const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = torch::matmul(x, w.t()) + b;
  return logits.argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
}

// Minimises mean CE + l2/2 |W|^2 (the bias is not penalised, as in sklearn)
// from zero weights; the objective is strictly convex for l2 > 0.
void Fit(const torch::Tensor& x, const torch::Tensor& y, int64_t num_classes, double l2,
         int64_t max_iterations, torch::Tensor& w_out, torch::Tensor& b_out) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor w = torch::zeros({num_classes, x.size(1)}, opts).requires_grad_(true);
  torch::Tensor b = torch::zeros({num_classes}, opts).requires_grad_(true);
  torch::optim::LBFGS opt({w, b}, torch::optim::LBFGSOptions(1.0)
                                      .max_iter(max_iterations)
                                      .max_eval(max_iterations * 5 / 4)
                                      .tolerance_grad(1e-9)
                                      .tolerance_change(1e-12)
                                      .history_size(20)
                                      .line_search_fn("strong_wolfe"));
  auto closure = [&]() -> torch::Tensor {
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(torch::matmul(x, w.t()) + b, y) +
                         0.5 * l2 * w.pow(2).sum();
    loss.backward();
    return loss;
  };
  opt.step(closure);
  w_out = w.detach().clone();
  b_out = b.detach().clone();
}

}  // namespace

std::vector<double> DefaultL2Grid() {
  std::vector<double> grid;
  for (int e = -12; e <= 2; ++e) grid.push_back(std::pow(10.0, e / 2.0));  // 1e-6 .. 1e1
  return grid;
}

absl::StatusOr<torch::Tensor> FrozenImageFeatures(clip::ClipModel& model,
                                                  const torch::Tensor& images, int64_t batch_size) {
  if (!model) return absl::InvalidArgumentError("linear probe: no model");
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 || images.size(0) < 1) {
    return absl::InvalidArgumentError("linear probe: images must be float [N>=1,3,R,R]");
  }
  if (batch_size < 1) return absl::InvalidArgumentError("linear probe: batch_size must be >= 1");
  return util::TorchCall("FrozenImageFeatures", [&] {
    torch::NoGradGuard no_grad;
    auto params = model->parameters();
    const torch::Device device = params.empty() ? torch::kCPU : params.front().device();
    const torch::Dtype dtype = params.empty() ? torch::kFloat32 : params.front().scalar_type();
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < images.size(0); start += batch_size) {
      const int64_t end = std::min(images.size(0), start + batch_size);
      torch::Tensor f = model->EncodeImage(images.slice(0, start, end).to(device, dtype), nullptr)
                            .to(torch::kCPU, torch::kFloat32);
      parts.push_back(f / f.norm(2, {-1}, /*keepdim=*/true));
    }
    return torch::cat(parts, 0);
  });
}

absl::StatusOr<LinearProbe> FitLinearProbe(const torch::Tensor& train_x,
                                           const std::vector<int64_t>& train_y,
                                           const torch::Tensor& val_x,
                                           const std::vector<int64_t>& val_y, int64_t num_classes,
                                           const LinearProbeOptions& options) {
  if (num_classes < 2) return absl::InvalidArgumentError("linear probe: need >= 2 classes");
  if (options.max_iterations < 1) {
    return absl::InvalidArgumentError("linear probe: max_iterations must be >= 1");
  }
  std::vector<double> grid = options.l2_grid.empty() ? DefaultL2Grid() : options.l2_grid;
  for (double l2 : grid) {
    if (!(l2 > 0) || !std::isfinite(l2)) {
      return absl::InvalidArgumentError("linear probe: every l2 strength must be finite and > 0");
    }
  }
  RETURN_IF_ERROR(CheckSet(train_x, train_y, num_classes, "train", -1));
  RETURN_IF_ERROR(CheckSet(val_x, val_y, num_classes, "validation", train_x.size(1)));
  // Strongest first, so that a strict '>' keeps the strongest of tied ones.
  std::sort(grid.begin(), grid.end(), std::greater<double>());
  return util::TorchCall("FitLinearProbe", [&]() -> absl::StatusOr<LinearProbe> {
    const torch::Tensor x = train_x.detach().to(torch::kCPU, torch::kFloat64);
    const torch::Tensor vx = val_x.detach().to(torch::kCPU, torch::kFloat64);
    const torch::Tensor y = Labels(train_y);
    const torch::Tensor vy = Labels(val_y);
    LinearProbe best;
    best.validation_top1 = -1;
    for (double l2 : grid) {
      torch::Tensor w, b;
      Fit(x, y, num_classes, l2, options.max_iterations, w, b);
      if (!torch::isfinite(w).all().item<bool>() || !torch::isfinite(b).all().item<bool>()) {
        return absl::InternalError(absl::StrCat("linear probe: fit at l2 ", l2, " diverged"));
      }
      const double acc = Top1(w, b, vx, vy);
      if (acc > best.validation_top1) {
        best.weight = w;
        best.bias = b;
        best.l2 = l2;
        best.validation_top1 = acc;
      }
    }
    return best;
  });
}

absl::StatusOr<double> LinearProbeAccuracy(const LinearProbe& probe, const torch::Tensor& x,
                                           const std::vector<int64_t>& y) {
  if (!probe.weight.defined() || probe.weight.dim() != 2 || !probe.bias.defined()) {
    return absl::InvalidArgumentError("linear probe: not fitted");
  }
  RETURN_IF_ERROR(CheckSet(x, y, probe.weight.size(0), "test", probe.weight.size(1)));
  return util::TorchCall("LinearProbeAccuracy", [&] {
    return Top1(probe.weight, probe.bias, x.detach().to(torch::kCPU, torch::kFloat64), Labels(y));
  });
}

}  // namespace provp::train
