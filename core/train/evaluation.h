// Classification accuracy of a (prompted or zero-shot) CLIP on a labelled
// image set: top-1, top-5, per-class accuracy, and the base/novel harmonic
// mean. Runs batched under NoGradGuard on the model's device. Used for the
// few-shot validation split during training and for the final test report;
// model selection never sees the test split (METHOD.md Q9).
// Thread-compatible: one evaluation per model at a time.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "core/clip/clip_model.h"
#include "core/image/preprocess.h"

namespace provp::train {

// A labelled set already preprocessed for the model.
struct EvalSet {
  torch::Tensor images;         // float [N,3,R,R], normalised; any device
  std::vector<int64_t> labels;  // N labels in [0, C)
};

struct EvalResult {
  int64_t num_images = 0;
  double top1 = 0.0;  // fractions in [0, 1]
  double top5 = 0.0;  // top-min(5, C)
  // Per class: accuracy (fraction) and image count; accuracy is 0 for a
  // class without images (count tells them apart).
  std::vector<double> per_class_accuracy;
  std::vector<int64_t> per_class_count;
  // Mean accuracy over the classes that have images.
  double mean_per_class_accuracy = 0.0;
};

// `text_features` [C,D] (normalised or not). `prompts` nullptr = zero-shot.
// Errors: INVALID_ARGUMENT for shape/label problems, torch failures mapped
// by TorchCall.
absl::StatusOr<EvalResult> Evaluate(clip::ClipModel& model, const clip::VisualPrompts* prompts,
                                    const EvalSet& set, const torch::Tensor& text_features,
                                    int64_t batch_size = 256);

// Same from uint8 [H,W,3] images: each batch goes through PreprocessForEval
// (resize shorter side, center crop to `size`) just before its forward, so
// large test sets never sit preprocessed in memory.
absl::StatusOr<EvalResult> EvaluateImages(clip::ClipModel& model,
                                          const clip::VisualPrompts* prompts,
                                          const std::vector<torch::Tensor>& rgb_hwc_uint8,
                                          const std::vector<int64_t>& labels,
                                          const torch::Tensor& text_features, int64_t size,
                                          int64_t batch_size = 256,
                                          const image::Normalization& norm = {});

// Preprocesses uint8 [H,W,3] images into an EvalSet (for the small few-shot
// validation split, evaluated every epoch).
absl::StatusOr<EvalSet> MakeEvalSet(const std::vector<torch::Tensor>& rgb_hwc_uint8,
                                    const std::vector<int64_t>& labels, int64_t size,
                                    const image::Normalization& norm = {});

nlohmann::json EvalResultToJson(const EvalResult& result);

}  // namespace provp::train
