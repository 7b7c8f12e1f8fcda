// Unit tests of CLIP eval preprocessing and RandomResizedCrop augmentation:
// geometry (resize rule, torchvision's center-crop rounding), value ranges,
// input validation, crop-box statistics, determinism and flips. CPU only.
#include "core/image/preprocess.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/status/status.h"
#include "tests/testing/status_matchers.h"

namespace provp::image {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

torch::Tensor RandomImage(int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {h, w, 3}, torch::kUInt8);
}

// Normalised [.., 3, H, W] back to 0..255 levels.
torch::Tensor Denormalize(const torch::Tensor& x, const Normalization& norm = {}) {
  torch::Tensor mean = torch::tensor({norm.mean[0], norm.mean[1], norm.mean[2]}).to(torch::kFloat);
  torch::Tensor std = torch::tensor({norm.std[0], norm.std[1], norm.std[2]}).to(torch::kFloat);
  return (x * std.view({3, 1, 1}) + mean.view({3, 1, 1})) * 255.0;
}

// [H,W,3] uint8 -> [3,H,W] float levels.
torch::Tensor Chw(const torch::Tensor& hwc) { return hwc.permute({2, 0, 1}).to(torch::kFloat); }

TEST(PreprocessForEvalTest, ConstantImageGivesNormalisedConstant) {
  torch::Tensor img = torch::full({50, 80, 3}, 200, torch::kUInt8);
  absl::StatusOr<torch::Tensor> out = PreprocessForEval(img, 32);
  ASSERT_OK(out.status());
  ASSERT_EQ(out->sizes(), torch::IntArrayRef({3, 32, 32}));
  EXPECT_EQ(out->scalar_type(), torch::kFloat);
  const Normalization norm;
  for (int c = 0; c < 3; ++c) {
    const double want = (200.0 / 255.0 - norm.mean[c]) / norm.std[c];
    EXPECT_NEAR((*out)[c].min().item<double>(), want, 1e-5);
    EXPECT_NEAR((*out)[c].max().item<double>(), want, 1e-5);
  }
}

TEST(PreprocessForEvalTest, ImageOfTheTargetSizeOnlyGetsNormalised) {
  torch::Tensor img = RandomImage(24, 24, 3);
  absl::StatusOr<torch::Tensor> out = PreprocessForEval(img, 24);
  ASSERT_OK(out.status());
  EXPECT_LT((Denormalize(*out) - Chw(img)).abs().max().item<double>(), 1e-3);
}

TEST(PreprocessForEvalTest, CenterCropRoundsLikePython) {
  // Short side already equals size, so only the crop acts. Offsets are
  // Python's round((w - size) / 2.0): 1.0 -> 1, 1.5 -> 2, 2.5 -> 2 (to even).
  const struct { int64_t width, left; } cases[] = {{22, 1}, {23, 2}, {25, 2}};
  for (const auto& c : cases) {
    torch::Tensor img = RandomImage(20, c.width, 5);
    absl::StatusOr<torch::Tensor> out = PreprocessForEval(img, 20);
    ASSERT_OK(out.status());
    torch::Tensor want = Chw(img).slice(2, c.left, c.left + 20);
    EXPECT_LT((Denormalize(*out) - want).abs().max().item<double>(), 1e-3) << "width " << c.width;
    // Same on the other axis (tall image, rows cropped).
    torch::Tensor tall = img.transpose(0, 1).contiguous();
    out = PreprocessForEval(tall, 20);
    ASSERT_OK(out.status());
    want = Chw(tall).slice(1, c.left, c.left + 20);
    EXPECT_LT((Denormalize(*out) - want).abs().max().item<double>(), 1e-3) << "height " << c.width;
  }
}

TEST(PreprocessForEvalTest, ResizeKeepsTheShorterSideAndStaysInRange) {
  // Left half black, right half white, 3:1 wide: after resizing the height
  // to 16 the center crop shows both halves, split in the middle.
  torch::Tensor img = torch::zeros({30, 90, 3}, torch::kUInt8);
  img.slice(1, 45, 90).fill_(255);
  absl::StatusOr<torch::Tensor> out = PreprocessForEval(img, 16);
  ASSERT_OK(out.status());
  torch::Tensor levels = Denormalize(*out);
  EXPECT_GE(levels.min().item<double>(), -1e-3);
  EXPECT_LE(levels.max().item<double>(), 255 + 1e-3);
  EXPECT_NEAR(levels.select(2, 0).max().item<double>(), 0.0, 1e-3);     // leftmost column black
  EXPECT_NEAR(levels.select(2, 15).min().item<double>(), 255.0, 1e-3);  // rightmost white
  // Resized values are 8-bit levels, as PIL would hand them over.
  EXPECT_LT((levels - levels.round()).abs().max().item<double>(), 1e-3);
}

TEST(PreprocessForEvalTest, RejectsBadInputWithReasons) {
  EXPECT_THAT(PreprocessForEval(torch::zeros({8, 8, 3}, torch::kFloat), 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("uint8")));
  EXPECT_THAT(PreprocessForEval(torch::zeros({8, 8}, torch::kUInt8), 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[H,W,3]")));
  EXPECT_THAT(PreprocessForEval(torch::zeros({8, 8, 4}, torch::kUInt8), 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[H,W,3]")));
  EXPECT_THAT(PreprocessForEval(torch::zeros({0, 8, 3}, torch::kUInt8), 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(PreprocessForEval(torch::Tensor(), 4), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PreprocessForEval(torch::zeros({8, 8, 3}, torch::kUInt8), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size")));
  EXPECT_THAT(PreprocessForEval(torch::zeros({8, 8, 3}, torch::kUInt8), 100000),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size")));
  Normalization bad;
  bad.std[1] = 0;
  EXPECT_THAT(PreprocessForEval(torch::zeros({8, 8, 3}, torch::kUInt8), 4, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("std")));
  // 2 x 100000 upscaled to short side 224 would be 224 x 11.2M pixels.
  EXPECT_THAT(PreprocessForEval(torch::zeros({2, 100000, 3}, torch::kUInt8), 224),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too thin")));
}

TEST(SampleCropBoxTest, BoxesStayInsideAndHonourScaleAndRatio) {
  AugmentOptions options;
  options.min_crop_scale = 0.3;
  options.max_crop_scale = 0.6;
  options.ratio_min = 0.5;
  options.ratio_max = 2.0;
  std::mt19937_64 rng(11);
  const int64_t h = 200, w = 300;
  int in_range = 0;
  double min_fraction = 1, max_fraction = 0;
  for (int i = 0; i < 2000; ++i) {
    const CropBox b = SampleCropBox(h, w, options, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_GE(b.height, 1);
    ASSERT_GE(b.width, 1);
    ASSERT_LE(b.top + b.height, h);
    ASSERT_LE(b.left + b.width, w);
    const double fraction = double(b.height * b.width) / double(h * w);
    const double ratio = double(b.width) / double(b.height);
    min_fraction = std::min(min_fraction, fraction);
    max_fraction = std::max(max_fraction, fraction);
    // Rounding w and h to integers moves the area by about a pixel row.
    if (fraction >= 0.3 - 0.01 && fraction <= 0.6 + 0.01 && ratio >= 0.5 * 0.98 &&
        ratio <= 2.0 * 1.02) {
      ++in_range;
    }
  }
  EXPECT_EQ(in_range, 2000);
  // The whole range is used, not a corner of it.
  EXPECT_LT(min_fraction, 0.32);
  EXPECT_GT(max_fraction, 0.58);
}

TEST(SampleCropBoxTest, FallsBackToCenterCropWithClampedRatio) {
  // Whole area at ratio 1 never fits a 300x200 image: after 10 tries the
  // fallback takes the full height and a 200-wide centered box.
  AugmentOptions options;
  options.min_crop_scale = options.max_crop_scale = 1.0;
  options.ratio_min = options.ratio_max = 1.0;
  std::mt19937_64 rng(3);
  const CropBox b = SampleCropBox(200, 300, options, rng);
  EXPECT_EQ(b.top, 0);
  EXPECT_EQ(b.height, 200);
  EXPECT_EQ(b.width, 200);
  EXPECT_EQ(b.left, 50);
}

TEST(SampleCropBoxTest, SameSeedSameBoxes) {
  AugmentOptions options;
  std::mt19937_64 a(99), b(99), c(100);
  bool any_difference = false;
  for (int i = 0; i < 50; ++i) {
    const CropBox x = SampleCropBox(480, 640, options, a);
    const CropBox y = SampleCropBox(480, 640, options, b);
    const CropBox z = SampleCropBox(480, 640, options, c);
    EXPECT_EQ(x.top, y.top);
    EXPECT_EQ(x.left, y.left);
    EXPECT_EQ(x.height, y.height);
    EXPECT_EQ(x.width, y.width);
    any_difference |=
        x.top != z.top || x.left != z.left || x.height != z.height || x.width != z.width;
  }
  EXPECT_TRUE(any_difference);
}

std::vector<torch::Tensor> SampleBatch() {
  return {RandomImage(60, 80, 1), RandomImage(45, 30, 2), RandomImage(100, 100, 3)};
}

TEST(AugmentBatchTest, ShapeRangeAndDeterminism) {
  AugmentOptions options;
  options.size = 32;
  const std::vector<torch::Tensor> batch = SampleBatch();
  std::mt19937_64 rng1(7), rng2(7), rng3(8);
  absl::StatusOr<torch::Tensor> a = AugmentBatch(batch, options, rng1, torch::kCPU);
  absl::StatusOr<torch::Tensor> b = AugmentBatch(batch, options, rng2, torch::kCPU);
  absl::StatusOr<torch::Tensor> c = AugmentBatch(batch, options, rng3, torch::kCPU);
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());
  ASSERT_OK(c.status());
  ASSERT_EQ(a->sizes(), torch::IntArrayRef({3, 3, 32, 32}));
  EXPECT_EQ(a->scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(*a, *b));
  EXPECT_FALSE(torch::equal(*a, *c));
  EXPECT_EQ(rng1(), rng2());  // the generator advanced the same way
  for (int64_t i = 0; i < 3; ++i) {
    torch::Tensor levels = Denormalize((*a)[i]);
    EXPECT_GE(levels.min().item<double>(), -1e-3);
    EXPECT_LE(levels.max().item<double>(), 255 + 1e-3);
  }
  // A second call continues the stream: a different view of the same data.
  absl::StatusOr<torch::Tensor> again = AugmentBatch(batch, options, rng1, torch::kCPU);
  ASSERT_OK(again.status());
  EXPECT_FALSE(torch::equal(*a, *again));
}

TEST(AugmentBatchTest, FlipProbabilityOneMirrorsTheSameCrop) {
  AugmentOptions no_flip;
  no_flip.size = 24;
  no_flip.flip_probability = 0.0;
  AugmentOptions flip = no_flip;
  flip.flip_probability = 1.0;
  const std::vector<torch::Tensor> batch = SampleBatch();
  std::mt19937_64 rng1(5), rng2(5);
  absl::StatusOr<torch::Tensor> a = AugmentBatch(batch, no_flip, rng1, torch::kCPU);
  absl::StatusOr<torch::Tensor> b = AugmentBatch(batch, flip, rng2, torch::kCPU);
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());
  EXPECT_FALSE(torch::equal(*a, *b));
  EXPECT_TRUE(torch::allclose(a->flip({3}), *b));
}

TEST(AugmentBatchTest, FullScaleMatchingRatioKeepsTheWholeImage) {
  // scale 1 and the image's own ratio: the crop is the image itself; at the
  // output size no resize happens, so the output is the normalised input.
  AugmentOptions options;
  options.size = 40;
  options.min_crop_scale = options.max_crop_scale = 1.0;
  options.ratio_min = options.ratio_max = 1.0;
  options.flip_probability = 0.0;
  torch::Tensor img = RandomImage(40, 40, 9);
  std::mt19937_64 rng(1);
  absl::StatusOr<torch::Tensor> out = AugmentBatch({img}, options, rng, torch::kCPU);
  ASSERT_OK(out.status());
  EXPECT_LT((Denormalize((*out)[0]) - Chw(img)).abs().max().item<double>(), 1e-3);
}

TEST(AugmentBatchTest, FullScaleOnModelSizedImagesIsTheEvalPreprocessing) {
  // The built-in model's tuning recipe (min crop scale 1, CoOp's default
  // ratio range, no flip) on 32 px images: every draw must give exactly
  // what evaluation sees, or training and test would differ (issue 15).
  AugmentOptions options;
  options.size = 32;
  options.min_crop_scale = options.max_crop_scale = 1.0;
  options.flip_probability = 0.0;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50; ++i) {
    torch::Tensor img = RandomImage(32, 32, 100 + i);
    absl::StatusOr<torch::Tensor> train = AugmentBatch({img}, options, rng, torch::kCPU);
    absl::StatusOr<torch::Tensor> eval = PreprocessForEval(img, 32);
    ASSERT_OK(train.status());
    ASSERT_OK(eval.status());
    EXPECT_TRUE(torch::equal((*train)[0], *eval)) << "draw " << i;
  }
}

TEST(AugmentBatchTest, SmallScaleZoomsIn) {
  // A checkerboard of 1-pixel squares: whole-image views average it to grey,
  // 1% crops upscaled keep most of the contrast.
  torch::Tensor board =
      (torch::arange(64).view({64, 1}) + torch::arange(64).view({1, 64})).remainder(2);
  torch::Tensor img = (board * 255).to(torch::kUInt8).unsqueeze(2).expand({64, 64, 3}).contiguous();
  AugmentOptions wide;
  wide.size = 16;
  wide.min_crop_scale = wide.max_crop_scale = 1.0;
  wide.ratio_min = wide.ratio_max = 1.0;
  AugmentOptions narrow = wide;
  narrow.min_crop_scale = narrow.max_crop_scale = 0.01;
  std::mt19937_64 rng(4);
  absl::StatusOr<torch::Tensor> w = AugmentBatch({img}, wide, rng, torch::kCPU);
  absl::StatusOr<torch::Tensor> n = AugmentBatch({img}, narrow, rng, torch::kCPU);
  ASSERT_OK(w.status());
  ASSERT_OK(n.status());
  EXPECT_LT(Denormalize((*w)[0]).std().item<double>(), 20.0);
  EXPECT_GT(Denormalize((*n)[0]).std().item<double>(), 60.0);
}

TEST(AugmentBatchTest, RejectsBadOptionsAndImages) {
  std::mt19937_64 rng(1);
  const std::vector<torch::Tensor> batch = SampleBatch();
  AugmentOptions options;
  options.size = 16;
  auto with = [&](auto edit) {
    AugmentOptions o = options;
    edit(o);
    return AugmentBatch(batch, o, rng, torch::kCPU);
  };
  EXPECT_THAT(with([](AugmentOptions& o) { o.min_crop_scale = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scale")));
  EXPECT_THAT(with([](AugmentOptions& o) { o.min_crop_scale = 0.9, o.max_crop_scale = 0.5; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scale")));
  EXPECT_THAT(with([](AugmentOptions& o) { o.ratio_max = NAN; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ratio")));
  EXPECT_THAT(with([](AugmentOptions& o) { o.ratio_min = 2, o.ratio_max = 1; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ratio")));
  EXPECT_THAT(with([](AugmentOptions& o) { o.flip_probability = 1.5; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("flip_probability")));
  EXPECT_THAT(with([](AugmentOptions& o) { o.size = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size")));
  EXPECT_THAT(AugmentBatch({}, options, rng, torch::kCPU),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty batch")));
  std::vector<torch::Tensor> bad = batch;
  bad.push_back(torch::zeros({4, 4, 3}, torch::kInt32));
  EXPECT_THAT(AugmentBatch(bad, options, rng, torch::kCPU),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("image 3")));
}

}  // namespace
}  // namespace provp::image
