// The CLIP paper's few-shot baseline: multinomial logistic regression on the
// frozen, L2-normalised image features, with the L2 strength chosen on a
// validation split. It anchors the prompt variants: a probe that clearly
// beats zero-shot while prompts do not points at the training path, not at
// the backbone's features. Full-batch L-BFGS in fp64 (the problem is convex
// and small: shots x classes rows), so the fit barely depends on the BLAS
// kernels. Pure functions; thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "core/clip/clip_model.h"

namespace provp::train {

struct LinearProbeOptions {
  // Candidate L2 strengths (lambda in mean-CE + lambda/2 * |W|^2); the one
  // with the best validation top-1 wins, ties going to the stronger one.
  // The default spans 1e-6 .. 1e1 in half decades, like the CLIP paper's
  // sweep over sklearn's C.
  std::vector<double> l2_grid;
  int64_t max_iterations = 1000;  // L-BFGS iterations per fit (sklearn's max_iter in CLIP)
};

struct LinearProbe {
  torch::Tensor weight;  // [C, D] fp64, CPU
  torch::Tensor bias;    // [C] fp64, CPU
  double l2 = 0;
  double validation_top1 = 0;  // of the chosen l2
};

// The default grid of LinearProbeOptions::l2_grid.
std::vector<double> DefaultL2Grid();

// [N, D] float32 L2-normalised image features of preprocessed images
// [N, 3, R, R] from the frozen model (no prompts), in batches.
absl::StatusOr<torch::Tensor> FrozenImageFeatures(clip::ClipModel& model,
                                                  const torch::Tensor& images,
                                                  int64_t batch_size = 256);

// Fits one probe per l2 in the grid on (train_x, train_y), keeps the one
// with the best top-1 on (val_x, val_y). Labels must lie in [0, num_classes).
absl::StatusOr<LinearProbe> FitLinearProbe(const torch::Tensor& train_x,
                                           const std::vector<int64_t>& train_y,
                                           const torch::Tensor& val_x,
                                           const std::vector<int64_t>& val_y, int64_t num_classes,
                                           const LinearProbeOptions& options = {});

// Top-1 accuracy in [0, 1] of `probe` on (x, y).
absl::StatusOr<double> LinearProbeAccuracy(const LinearProbe& probe, const torch::Tensor& x,
                                           const std::vector<int64_t>& y);

}  // namespace provp::train
