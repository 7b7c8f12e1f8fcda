// The quality benchmark's linear-probe row: for one few-shot draw, fits
// train::FitLinearProbe on the frozen features of the shots (no
// augmentation, as in the CLIP paper), picks the L2 strength on the draw's
// validation shots and reports top-1 on the test split. The test features
// are computed once per dataset by the caller.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "core/clip/clip_model.h"
#include "core/train/evaluation.h"

namespace provp::bench {

struct LabeledImages {
  const std::vector<torch::Tensor>* images;  // uint8 [H,W,3]
  const std::vector<int64_t>* labels;
};

// Top-1 in percent. `record` gets the chosen l2 and its validation top-1.
absl::StatusOr<double> LinearProbeTop1(clip::ClipModel& model, int64_t resolution,
                                       LabeledImages train, LabeledImages val,
                                       const torch::Tensor& test_features,
                                       const std::vector<int64_t>& test_labels, int64_t num_classes,
                                       nlohmann::json& record);

}  // namespace provp::bench
