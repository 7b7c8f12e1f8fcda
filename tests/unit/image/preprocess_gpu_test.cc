// CUDA checks of preprocessing (label gpu): the same inputs and seed give the
// same tensors on the GPU as on the CPU (up to one 8-bit level where float
// rounding lands on a half), for images that start on either device. Every
// test skips itself when CUDA is unavailable.
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/image/preprocess.h"
#include "tests/testing/status_matchers.h"

namespace provp::image {
namespace {

// One 8-bit level in normalised units is 1/255/std, about 0.015; allow a
// few such pixels but keep the mean tight.
constexpr double kMaxDiff = 0.016;
constexpr double kMeanDiff = 1e-4;

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "CUDA not available"

torch::Tensor RandomImage(int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  // Smooth content like photos (pure noise maximises rounding ties).
  torch::Tensor base = torch::rand({1, 3, h / 8 + 2, w / 8 + 2}) * 255;
  namespace F = torch::nn::functional;
  torch::Tensor up = F::interpolate(base, F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{h, w})
                                              .mode(torch::kBilinear)
                                              .align_corners(false));
  return up[0].permute({1, 2, 0}).round().clamp(0, 255).to(torch::kUInt8).contiguous();
}

void ExpectClose(const torch::Tensor& cpu, const torch::Tensor& gpu) {
  ASSERT_TRUE(gpu.is_cuda());
  ASSERT_EQ(cpu.sizes(), gpu.sizes());
  const torch::Tensor diff = (cpu - gpu.cpu()).abs();
  EXPECT_LE(diff.max().item<double>(), kMaxDiff);
  EXPECT_LE(diff.mean().item<double>(), kMeanDiff);
}

TEST(PreprocessGpuTest, EvalMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  for (auto [h, w, size] :
       {std::tuple<int64_t, int64_t, int64_t>{480, 640, 224}, {17, 23, 64}, {60, 1000, 64}}) {
    torch::Tensor img = RandomImage(h, w, uint64_t(h * w));
    absl::StatusOr<torch::Tensor> cpu = PreprocessForEval(img, size);
    absl::StatusOr<torch::Tensor> gpu = PreprocessForEval(img.to(torch::kCUDA), size);
    ASSERT_OK(cpu.status());
    ASSERT_OK(gpu.status());
    ExpectClose(*cpu, *gpu);
  }
}

TEST(PreprocessGpuTest, AugmentMatchesCpuForHostAndDeviceImages) {
  SKIP_WITHOUT_CUDA();
  std::vector<torch::Tensor> host = {RandomImage(300, 200, 1), RandomImage(64, 96, 2),
                                     RandomImage(500, 375, 3), RandomImage(40, 40, 4)};
  std::vector<torch::Tensor> device;
  for (const torch::Tensor& t : host) device.push_back(t.to(torch::kCUDA));
  AugmentOptions options;
  options.size = 224;
  std::mt19937_64 r1(123), r2(123), r3(123);
  absl::StatusOr<torch::Tensor> cpu = AugmentBatch(host, options, r1, torch::kCPU);
  absl::StatusOr<torch::Tensor> from_host = AugmentBatch(host, options, r2, torch::kCUDA);
  absl::StatusOr<torch::Tensor> from_device = AugmentBatch(device, options, r3, torch::kCUDA);
  ASSERT_OK(cpu.status());
  ASSERT_OK(from_host.status());
  ASSERT_OK(from_device.status());
  ExpectClose(*cpu, *from_host);
  EXPECT_TRUE(torch::equal(from_host->cpu(), from_device->cpu()));
}

}  // namespace
}  // namespace provp::image
