// CLIP eval preprocessing and RandomResizedCrop/flip augmentation on tensors
// (see preprocess.h). Random draws happen on the host from the caller's
// generator; pixel work is whole-tensor torch ops on the chosen device.
// Thread-compatible: no shared state.
#include "core/image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "core/util/torch_status.h"

namespace provp::image {
namespace {

// Output sides above this are a configuration error, not a model size.
constexpr int64_t kMaxSize = 4096;
// Floor of the resize budget for thin images that get upscaled (see
// PreprocessForEval in the header).
constexpr int64_t kMinResizeBudgetPixels = int64_t{1} << 24;
// PIL hands torchvision 8-bit images, so the reference rounds resized values
// to integers (after each of its two passes) before /255. Measured on the
// shared fixtures (mean |diff| in normalised units): float result 0.0045,
// rounded once 0.0031, two rounded passes like PIL < 3e-6 (max one 8-bit
// level, 0.015). Keep the PIL-like variant.
constexpr bool kRoundLikePil = true;

// Uniform double in [0, 1) from the top 53 bits: the same on every platform,
// unlike std::uniform_real_distribution.
double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * Uniform01(rng);
}

// Uniform integer in [lo, hi_exclusive) without modulo bias.
int64_t RandInt(std::mt19937_64& rng, int64_t lo, int64_t hi_exclusive) {
  const uint64_t n = static_cast<uint64_t>(hi_exclusive - lo);
  if (n <= 1) return lo;
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t r = rng();
  while (r >= limit) r = rng();
  return lo + static_cast<int64_t>(r % n);
}

// Python's round(): halves go to the even neighbour (default FP rounding mode).
int64_t RoundHalfEven(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

absl::Status ValidateImage(const torch::Tensor& t, const std::string& what) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(what, ": undefined tensor"));
  if (t.scalar_type() != torch::kUInt8) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected dtype uint8, got ",
                                                   std::string(c10::toString(t.scalar_type()))));
  }
  if (t.dim() != 3 || t.size(2) != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected shape [H,W,3], got ", c10::str(t.sizes())));
  }
  if (t.size(0) < 1 || t.size(1) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty image ", c10::str(t.sizes())));
  }
  return absl::OkStatus();
}

absl::Status ValidateSize(int64_t size, const std::string& what) {
  if (size < 1 || size > kMaxSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": size must be in [1, ", kMaxSize, "], got ", size));
  }
  return absl::OkStatus();
}

absl::Status ValidateNorm(const Normalization& norm, const std::string& what) {
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(norm.mean[c]) || !std::isfinite(norm.std[c]) || norm.std[c] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": normalisation channel ", c,
                                                     " needs a finite mean and a positive std"));
    }
  }
  return absl::OkStatus();
}

torch::Tensor Interpolate(const torch::Tensor& x, int64_t out_h, int64_t out_w) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{out_h, out_w})
                               .mode(torch::kBicubic)
                               .align_corners(false)
                               .antialias(true));
}

// [1,3,h,w] float (0..255) -> [1,3,out_h,out_w], antialiased bicubic like
// PIL. PIL resamples in two 8-bit passes, horizontal then vertical, clipping
// and rounding after each; with kRoundLikePil we do the same (an axis whose
// size is unchanged is left alone, as in PIL; torch's antialiased kernel at
// scale 1 is the identity anyway).
torch::Tensor ResizeBicubic(const torch::Tensor& x, int64_t out_h, int64_t out_w) {
  torch::Tensor y = x;
  if (!kRoundLikePil) {
    if (x.size(2) != out_h || x.size(3) != out_w) y = Interpolate(x, out_h, out_w);
    return y.clamp(0.0, 255.0);
  }
  if (y.size(3) != out_w) y = Interpolate(y, y.size(2), out_w).clamp_(0.0, 255.0).round_();
  if (y.size(2) != out_h) y = Interpolate(y, out_h, out_w).clamp_(0.0, 255.0).round_();
  return y;
}

// [N,3,H,W] float in 0..255 -> normalised, in place where possible.
torch::Tensor Normalize(torch::Tensor x, const Normalization& norm) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
  torch::Tensor mean = torch::tensor({norm.mean[0], norm.mean[1], norm.mean[2]}, torch::kDouble)
                           .to(opts)
                           .view({1, 3, 1, 1});
  torch::Tensor std = torch::tensor({norm.std[0], norm.std[1], norm.std[2]}, torch::kDouble)
                          .to(opts)
                          .view({1, 3, 1, 1});
  return x.div_(255.0).sub_(mean).div_(std);
}

// uint8 [H,W,3] -> float [1,3,H,W].
torch::Tensor ToNchwFloat(const torch::Tensor& hwc) {
  return hwc.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
}

}  // namespace

namespace {

// The resize + crop of PreprocessForEval, as float 0..255 levels [1,3,S,S].
absl::StatusOr<torch::Tensor> ResizeCropLevels(const torch::Tensor& rgb_hwc_uint8, int64_t size,
                                               const std::string& what) {
  RETURN_IF_ERROR(ValidateImage(rgb_hwc_uint8, what));
  RETURN_IF_ERROR(ValidateSize(size, what));
  const int64_t h = rgb_hwc_uint8.size(0);
  const int64_t w = rgb_hwc_uint8.size(1);
  // torchvision: new_short = size, new_long = int(size * long / short).
  const int64_t short_side = std::min(h, w);
  const int64_t long_side = std::max(h, w);
  const int64_t new_long =
      static_cast<int64_t>(static_cast<double>(size * long_side) / static_cast<double>(short_side));
  const int64_t new_h = h <= w ? size : new_long;
  const int64_t new_w = h <= w ? new_long : size;
  const int64_t budget = std::max(h * w, kMinResizeBudgetPixels);
  if (new_long > budget / size) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": a ", w, "x", h,
                                                   " image is too thin to resize to short side ",
                                                   size, " (would be ", new_w, "x", new_h, ")"));
  }
  // Python's round((new - size) / 2.0), as torchvision's center_crop.
  const int64_t top = RoundHalfEven(static_cast<double>(new_h - size) / 2.0);
  const int64_t left = RoundHalfEven(static_cast<double>(new_w - size) / 2.0);
  return util::TorchCall(what, [&]() -> torch::Tensor {
    torch::Tensor x = ResizeBicubic(ToNchwFloat(rgb_hwc_uint8), new_h, new_w);
    return x.slice(2, top, top + size).slice(3, left, left + size).contiguous();
  });
}

}  // namespace

absl::StatusOr<torch::Tensor> PreprocessForEval(const torch::Tensor& rgb_hwc_uint8, int64_t size,
                                                const Normalization& norm) {
  const std::string what = "PreprocessForEval";
  RETURN_IF_ERROR(ValidateNorm(norm, what));
  ASSIGN_OR_RETURN(torch::Tensor x, ResizeCropLevels(rgb_hwc_uint8, size, what));
  return util::TorchCall(what, [&] { return Normalize(std::move(x), norm).squeeze(0); });
}

absl::StatusOr<torch::Tensor> ResizeCropForEval(const torch::Tensor& rgb_hwc_uint8, int64_t size) {
  static_assert(kRoundLikePil, "8-bit crops are exact only with PIL-like rounding");
  ASSIGN_OR_RETURN(torch::Tensor x, ResizeCropLevels(rgb_hwc_uint8, size, "ResizeCropForEval"));
  return util::TorchCall("ResizeCropForEval", [&] { return x.squeeze(0).to(torch::kUInt8); });
}

torch::Tensor NormalizeForModel(const torch::Tensor& crops_uint8, const Normalization& norm) {
  return Normalize(crops_uint8.to(torch::kFloat), norm);
}

CropBox SampleCropBox(int64_t height, int64_t width, const AugmentOptions& options,
                      std::mt19937_64& rng) {
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(options.ratio_min);
  const double log_hi = std::log(options.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * Uniform(rng, options.min_crop_scale, options.max_crop_scale);
    const double aspect = std::exp(Uniform(rng, log_lo, log_hi));
    const int64_t w = RoundHalfEven(std::sqrt(target_area * aspect));
    const int64_t h = RoundHalfEven(std::sqrt(target_area / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.height = h;
      box.width = w;
      box.top = RandInt(rng, 0, height - h + 1);
      box.left = RandInt(rng, 0, width - w + 1);
      return box;
    }
  }
  // Fallback: the largest center crop whose ratio lies in the range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width;
  int64_t h = height;
  if (in_ratio < options.ratio_min) {
    h = RoundHalfEven(static_cast<double>(w) / options.ratio_min);
  } else if (in_ratio > options.ratio_max) {
    w = RoundHalfEven(static_cast<double>(h) * options.ratio_max);
  }
  // torchvision could return an empty box for absurd ratio ranges on
  // 1-pixel images; a 1-pixel box keeps the resize defined.
  h = std::clamp<int64_t>(h, 1, height);
  w = std::clamp<int64_t>(w, 1, width);
  CropBox box;
  box.height = h;
  box.width = w;
  box.top = (height - h) / 2;
  box.left = (width - w) / 2;
  return box;
}

absl::StatusOr<torch::Tensor> AugmentBatch(const std::vector<torch::Tensor>& rgb_hwc_uint8,
                                           const AugmentOptions& options, std::mt19937_64& rng,
                                           const torch::Device& device) {
  const std::string what = "AugmentBatch";
  RETURN_IF_ERROR(ValidateSize(options.size, what));
  RETURN_IF_ERROR(ValidateNorm(options.norm, what));
  const bool scale_finite =
      std::isfinite(options.min_crop_scale) && std::isfinite(options.max_crop_scale);
  const bool ratio_finite = std::isfinite(options.ratio_min) && std::isfinite(options.ratio_max);
  if (!scale_finite || !(options.min_crop_scale > 0) ||
      options.min_crop_scale > options.max_crop_scale) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": scale range must satisfy 0 < min <= max, got [",
                     options.min_crop_scale, ", ", options.max_crop_scale, "]"));
  }
  if (!ratio_finite || !(options.ratio_min > 0) || options.ratio_min > options.ratio_max) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ratio range must satisfy 0 < min <= max, got [", options.ratio_min,
                     ", ", options.ratio_max, "]"));
  }
  if (!(options.flip_probability >= 0 && options.flip_probability <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": flip_probability must be in [0, 1], got ", options.flip_probability));
  }
  if (rgb_hwc_uint8.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty batch"));
  for (size_t i = 0; i < rgb_hwc_uint8.size(); ++i) {
    RETURN_IF_ERROR(ValidateImage(rgb_hwc_uint8[i], absl::StrCat(what, ": image ", i)));
  }

  // All draws first, in a fixed order (box then flip, image by image), so
  // the stream does not depend on the device or on torch.
  std::vector<CropBox> boxes;
  std::vector<bool> flips;
  boxes.reserve(rgb_hwc_uint8.size());
  flips.reserve(rgb_hwc_uint8.size());
  for (const torch::Tensor& img : rgb_hwc_uint8) {
    boxes.push_back(SampleCropBox(img.size(0), img.size(1), options, rng));
    flips.push_back(Uniform01(rng) < options.flip_probability);
  }

  return util::TorchCall(what, [&]() -> torch::Tensor {
    const int64_t s = options.size;
    torch::Tensor out = torch::empty({static_cast<int64_t>(rgb_hwc_uint8.size()), 3, s, s},
                                     torch::TensorOptions().dtype(torch::kFloat).device(device));
    for (size_t i = 0; i < rgb_hwc_uint8.size(); ++i) {
      const CropBox& b = boxes[i];
      // Crop before moving so only the box crosses to the device.
      torch::Tensor crop = rgb_hwc_uint8[i]
                               .slice(0, b.top, b.top + b.height)
                               .slice(1, b.left, b.left + b.width)
                               .to(device);
      torch::Tensor view = ResizeBicubic(ToNchwFloat(crop), s, s);
      if (flips[i]) view = view.flip({3});
      out.slice(0, i, i + 1).copy_(view);
    }
    return Normalize(std::move(out), options.norm);
  });
}

}  // namespace provp::image
