// CLIP image preprocessing and training augmentation on LibTorch tensors.
// Test-time: resize the shorter side with antialiased bicubic, center crop,
// scale to [0,1], normalise with the CLIP mean/std. Train-time (ProVP recipe):
// RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3, bicubic) + horizontal flip
// + the same normalisation, on CPU or the GPU. Input images are uint8
// [H,W,3] tensors, so decoding (OpenCV) stays out of this library.
// Stateless apart from the generator the caller passes; thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace provp::image {

struct Normalization {
  std::array<double, 3> mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std{0.26862954, 0.26130258, 0.27577711};
};

// uint8 [H,W,3] (any device) -> float [3,size,size] normalised.
// Shorter side resized to `size` (long side int(size * long / short), as
// torchvision computes it) with antialiased bicubic in two passes,
// horizontal then vertical, each clamped and rounded to 8-bit levels as PIL
// does (matches the PIL reference to within one level), center crop with
// torchvision's
// rounding, /255, normalise. The work runs on the input's device. size must
// be in [1, 4096]; inputs so thin that the resized image would exceed
// max(H*W, 2^24) pixels are refused rather than allocated.
absl::StatusOr<torch::Tensor> PreprocessForEval(const torch::Tensor& rgb_hwc_uint8, int64_t size,
                                                const Normalization& norm = {});

// PreprocessForEval in two halves, for a host/device split: the resized,
// center-cropped image as 8-bit levels (uint8 [3,size,size], on the input's
// device; PIL rounds to 8-bit levels after each pass, so nothing is lost),
// and the normalisation (uint8 [N,3,S,S] -> float, on its device).
// NormalizeForModel(ResizeCropForEval(x).unsqueeze(0))[0] equals
// PreprocessForEval(x) exactly.
absl::StatusOr<torch::Tensor> ResizeCropForEval(const torch::Tensor& rgb_hwc_uint8, int64_t size);
torch::Tensor NormalizeForModel(const torch::Tensor& crops_uint8, const Normalization& norm = {});

struct AugmentOptions {
  int64_t size = 224;
  double min_crop_scale = 0.08;
  double max_crop_scale = 1.0;
  double ratio_min = 3.0 / 4.0;
  double ratio_max = 4.0 / 3.0;
  double flip_probability = 0.5;
  Normalization norm;
};

// A RandomResizedCrop box in pixels: rows [top, top+height), columns
// [left, left+width) of the source image.
struct CropBox {
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// Draws a crop box for an image of the given size the way torchvision's
// RandomResizedCrop.get_params does: up to 10 tries of a uniform area
// fraction in [min_crop_scale, max_crop_scale) and a log-uniform aspect ratio, else a
// center crop with the ratio clamped to the range (kept at least 1x1).
// Uniform numbers come from `rng` with a fixed, portable mapping (53-bit
// doubles, rejection-sampled integers), so a seed gives the same boxes with
// any standard library. Options are not validated here (AugmentBatch does).
CropBox SampleCropBox(int64_t height, int64_t width, const AugmentOptions& options,
                      std::mt19937_64& rng);

// One random view per image: uint8 [H,W,3] each -> float [N,3,size,size].
// Crop, PIL-like resize to size x size (as PreprocessForEval), flip with
// flip_probability, normalise. INVALID_ARGUMENT for bad images or options
// or an empty batch.
// Randomness comes only from `rng` (crop boxes and flips are drawn on the
// host), so runs are reproducible for a seed on any device and the RNG state
// can be checkpointed; the pixel work runs on `device`.
absl::StatusOr<torch::Tensor> AugmentBatch(const std::vector<torch::Tensor>& rgb_hwc_uint8,
                                           const AugmentOptions& options, std::mt19937_64& rng,
                                           const torch::Device& device);

}  // namespace provp::image
