// CUDA checks (label `gpu`; every test skips without a CUDA device): the
// fixture model on the GPU in fp32 matches the reference like the CPU does
// (looser bound: TF32/cuBLAS reductions differ), and in bf16/fp16 the
// features stay within cosine 0.99 of the reference and the zero-shot
// predictions agree. Data-driven over PROVP_PARITY_FIXTURES like the CPU
// parity suite.
#include <string>

#include <torch/torch.h>

#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/safetensors.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::clip {
namespace {

class CudaParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
};

torch::Tensor Normalize(const torch::Tensor& x) {
  torch::Tensor f = x.to(torch::kCPU, torch::kFloat32);
  return f / f.norm(2, -1, true);
}

TEST_P(CudaParityTest, FeaturesMatchReferenceInEachPrecision) {
  const std::string dir = GetParam();
  auto ckpt = LoadCheckpoint(dir + "/openai.safetensors");
  ASSERT_OK(ckpt);
  auto ref = ReadSafetensors(dir + "/reference.safetensors");
  ASSERT_OK(ref);
  const auto& t = ref->tensors;
  for (torch::Dtype dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    SCOPED_TRACE(std::string("dtype ") + c10::toString(dtype));
    ModelOptions opts;
    opts.device = "cuda";
    opts.dtype = dtype;
    auto model = BuildClipModel(*ckpt, opts);
    ASSERT_OK(model);
    torch::NoGradGuard no_grad;
    const torch::Tensor images = t.at("images").to(torch::kCUDA, dtype);
    torch::Tensor img = (*model)->EncodeImage(images).to(torch::kCPU, torch::kFloat32);
    torch::Tensor txt =
        (*model)->EncodeText(t.at("text_tokens").to(torch::kCUDA)).to(torch::kCPU, torch::kFloat32);
    VisualPrompts prompts;
    prompts.prompts = t.at("prompts").to(torch::kCUDA);
    torch::Tensor pimg = (*model)->EncodeImage(images, &prompts).to(torch::kCPU, torch::kFloat32);
    ASSERT_TRUE(torch::isfinite(img).all().item<bool>());
    ASSERT_TRUE(torch::isfinite(pimg).all().item<bool>());
    if (dtype == torch::kFloat32) {
      EXPECT_TRUE(torch::allclose(img, t.at("image_features"), 2e-3, 2e-3));
      EXPECT_TRUE(torch::allclose(txt, t.at("text_features"), 2e-3, 2e-3));
      EXPECT_TRUE(torch::allclose(pimg, t.at("provp_image_features"), 2e-3, 2e-3));
    }
    // Cosine to the fp32 reference, row by row.
    const double min_cos_img =
        (Normalize(img) * Normalize(t.at("image_features"))).sum(-1).min().item<double>();
    const double min_cos_txt =
        (Normalize(txt) * Normalize(t.at("text_features"))).sum(-1).min().item<double>();
    const double min_cos_p =
        (Normalize(pimg) * Normalize(t.at("provp_image_features"))).sum(-1).min().item<double>();
    EXPECT_GT(min_cos_img, 0.99);
    EXPECT_GT(min_cos_txt, 0.99);
    EXPECT_GT(min_cos_p, 0.99);
    // Same zero-shot decisions as the reference.
    torch::Tensor logits = Normalize(img).matmul(Normalize(txt).t());
    EXPECT_TRUE(logits.argmax(-1).equal(t.at("logits_zero_shot").argmax(-1)));
  }
}

TEST_P(CudaParityTest, GradientReachesPromptsOnCuda) {
  const std::string dir = GetParam();
  auto ckpt = LoadCheckpoint(dir + "/openai.safetensors");
  ASSERT_OK(ckpt);
  auto ref = ReadSafetensors(dir + "/reference.safetensors");
  ASSERT_OK(ref);
  ModelOptions opts;
  opts.device = "cuda";
  opts.dtype = torch::kBFloat16;
  auto model = BuildClipModel(*ckpt, opts);
  ASSERT_OK(model);
  torch::Tensor master = ref->tensors.at("prompts").to(torch::kCUDA).clone().requires_grad_(true);
  VisualPrompts prompts;
  prompts.prompts = master;
  torch::Tensor f =
      (*model)->EncodeImage(ref->tensors.at("images").to(torch::kCUDA, torch::kBFloat16), &prompts);
  f.to(torch::kFloat32).pow(2).sum().backward();
  ASSERT_TRUE(master.grad().defined());
  EXPECT_EQ(master.grad().scalar_type(), torch::kFloat32);
  EXPECT_GT(master.grad().abs().sum().item<double>(), 0.0);
  for (const auto& p : (*model)->parameters()) EXPECT_FALSE(p.grad().defined());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaParityTest,
                         ::testing::ValuesIn(provp::testing::DirsFromEnv(
                             "PROVP_PARITY_FIXTURES",
                             provp::testing::SharedDir() + "/fixtures/tiny")));

}  // namespace
}  // namespace provp::clip
