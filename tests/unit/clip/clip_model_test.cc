// Contract tests for ClipModel on the tiny random-init config: shapes and
// names, the ProVP prompted forward (insertion, progressive rule, depth),
// gradients to the prompts only, dtype placement and error reporting.
#include "core/clip/clip_model.h"

#include <set>
#include <string>

#include <torch/torch.h>

#include "core/clip/config.h"
#include "core/util/torch_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::clip {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

ClipModel TinyModel(uint64_t seed = 1) {
  auto model = BuildRandomClipModel(TinyConfig(), ModelOptions{}, seed);
  EXPECT_OK(model);
  return *model;
}

torch::Tensor Images(int64_t b, uint64_t seed = 7) {
  torch::manual_seed(seed);
  return torch::randn({b, 3, 32, 32});
}

torch::Tensor Prompts(int64_t depth, int64_t m, uint64_t seed = 3) {
  torch::manual_seed(seed);
  return torch::rand({depth, m, TinyConfig().vision_width}) * 0.2 - 0.1;
}

torch::Tensor Tokens() {
  torch::Tensor t = torch::zeros({2, 77}, torch::kLong);
  t.index_put_({0, torch::indexing::Slice(0, 4)}, torch::tensor({49406, 320, 1125, 49407}));
  t.index_put_({1, torch::indexing::Slice(0, 3)}, torch::tensor({49406, 1929, 49407}));
  return t;
}

TEST(ClipModelTest, ParameterNamesAreTheOpenAIKeys) {
  ClipModel model = TinyModel();
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  // 2 vision + 2 text layers: the same 62 keys as the tiny fixture.
  EXPECT_EQ(names.size(), 62u);
  for (const char* key :
       {"visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding",
        "visual.ln_pre.weight", "visual.transformer.resblocks.1.attn.in_proj_weight",
        "visual.transformer.resblocks.0.attn.out_proj.bias",
        "visual.transformer.resblocks.0.mlp.c_fc.weight",
        "visual.transformer.resblocks.1.mlp.c_proj.bias", "visual.ln_post.bias", "visual.proj",
        "token_embedding.weight", "positional_embedding", "transformer.resblocks.1.ln_2.weight",
        "ln_final.weight", "text_projection", "logit_scale"}) {
    EXPECT_EQ(names.count(key), 1u) << key;
  }
  EXPECT_EQ(names.count("visual.conv1.bias"), 0u);
}

TEST(ClipModelTest, FeatureShapesAndFrozenState) {
  ClipModel model = TinyModel();
  const ClipConfig c = TinyConfig();
  torch::Tensor img = model->EncodeImage(Images(3));
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, c.embed_dim}));
  EXPECT_EQ(img.scalar_type(), torch::kFloat32);
  torch::Tensor txt = model->EncodeText(Tokens());
  EXPECT_EQ(txt.sizes(), (std::vector<int64_t>{2, c.embed_dim}));
  EXPECT_TRUE(torch::isfinite(img).all().item<bool>());
  EXPECT_FALSE(model->is_training());
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_NEAR(model->LogitScale(), 1.0 / 0.07, 1e-3);
}

TEST(ClipModelTest, SeedDecidesWeights) {
  torch::Tensor x = Images(2);
  torch::Tensor a = TinyModel(1)->EncodeImage(x);
  torch::Tensor b = TinyModel(1)->EncodeImage(x);
  torch::Tensor c = TinyModel(2)->EncodeImage(x);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_GT((a - c).abs().max().item<double>(), 1e-3);
}

TEST(ClipModelTest, BatchItemsAreIndependent) {
  ClipModel model = TinyModel();
  torch::Tensor x = Images(3);
  VisualPrompts vp{Prompts(2, 4), 0.01};
  torch::Tensor all = model->EncodeImage(x, &vp);
  torch::Tensor one = model->EncodeImage(x.narrow(0, 1, 1), &vp);
  EXPECT_TRUE(torch::allclose(all.narrow(0, 1, 1), one, 1e-5, 1e-5));
}

TEST(ClipModelTest, PromptsChangeTheImageFeatures) {
  ClipModel model = TinyModel();
  torch::Tensor x = Images(2);
  torch::Tensor plain = model->EncodeImage(x);
  VisualPrompts vp{Prompts(2, 4), 0.01};
  torch::Tensor prompted = model->EncodeImage(x, &vp);
  EXPECT_GT((plain - prompted).abs().max().item<double>(), 1e-4);
  // A different prompt tensor gives a different answer again.
  VisualPrompts other{Prompts(2, 4, /*seed=*/99), 0.01};
  EXPECT_GT((model->EncodeImage(x, &other) - prompted).abs().max().item<double>(), 1e-4);
}

TEST(ClipModelTest, SinglePromptTokenIsInserted) {
  // m = 1 is inserted too (the reference skipped m <= 4).
  ClipModel model = TinyModel();
  torch::Tensor x = Images(1);
  VisualPrompts vp{Prompts(2, 1), 0.01};
  EXPECT_GT((model->EncodeImage(x) - model->EncodeImage(x, &vp)).abs().max().item<double>(), 1e-4);
}

TEST(ClipModelTest, AlphaZeroDiffersFromReferenceAlpha) {
  ClipModel model = TinyModel();
  torch::Tensor x = Images(2);
  torch::Tensor p = Prompts(2, 4);
  VisualPrompts deep{p, 0.0};
  VisualPrompts provp{p, 0.01};
  torch::Tensor a = model->EncodeImage(x, &deep);
  torch::Tensor b = model->EncodeImage(x, &provp);
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-7);
  EXPECT_FALSE(torch::equal(a, b));
}

TEST(ClipModelTest, DepthOnePromptsLeaveLaterLayersAlone) {
  ClipModel model = TinyModel();
  torch::Tensor x = Images(2);
  torch::Tensor p = Prompts(2, 4);
  VisualPrompts shallow{p.narrow(0, 0, 1), 0.01};
  // With alpha 1 the rule keeps the previous output, whatever P_1 is: the
  // same forward as prompts in layer 0 only.
  VisualPrompts keep{p, 1.0};
  torch::Tensor a = model->EncodeImage(x, &shallow);
  torch::Tensor b = model->EncodeImage(x, &keep);
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-6));
  // alpha is not used when there is no later prompt layer.
  VisualPrompts shallow_alpha0{p.narrow(0, 0, 1), 0.0};
  EXPECT_TRUE(torch::equal(a, model->EncodeImage(x, &shallow_alpha0)));
  // And a later P_1 does matter when alpha < 1.
  VisualPrompts deep{p, 0.01};
  EXPECT_GT((model->EncodeImage(x, &deep) - a).abs().max().item<double>(), 1e-5);
}

TEST(ClipModelTest, GradientReachesPromptsButNotWeights) {
  ClipModel model = TinyModel();
  torch::Tensor p = Prompts(2, 4).requires_grad_(true);
  VisualPrompts vp{p, 0.01};
  torch::Tensor f = model->EncodeImage(Images(2), &vp);
  f.pow(2).sum().backward();
  ASSERT_TRUE(p.grad().defined());
  // Every prompted layer receives gradient.
  EXPECT_GT(p.grad()[0].abs().sum().item<double>(), 0.0);
  EXPECT_GT(p.grad()[1].abs().sum().item<double>(), 0.0);
  for (const auto& item : model->named_parameters()) {
    EXPECT_FALSE(item.value().grad().defined()) << item.key();
  }
}

TEST(ClipModelTest, CausalMaskIgnoresTokensAfterTheEnd) {
  ClipModel model = TinyModel();
  torch::Tensor t = Tokens();
  torch::Tensor a = model->EncodeText(t);
  torch::Tensor u = t.clone();
  u.index_put_({0, 10}, 5000);  // after the end token of row 0
  torch::Tensor b = model->EncodeText(u);
  EXPECT_TRUE(torch::allclose(a[0], b[0], 1e-6, 1e-6));
  // ...but a token before the end does change it.
  u.index_put_({0, 1}, 5000);
  EXPECT_GT((model->EncodeText(u)[0] - a[0]).abs().max().item<double>(), 1e-6);
}

TEST(ClipModelTest, LoadWeightsCopiesEveryTensor) {
  ClipModel a = TinyModel(1);
  ClipModel b = TinyModel(2);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& item : a->named_parameters())
    weights[item.key()] = item.value().to(torch::kFloat16);
  ASSERT_OK(b->LoadWeights(weights));
  torch::Tensor x = Images(2);
  // fp16 round trip of random weights: close, not bitwise.
  EXPECT_TRUE(torch::allclose(a->EncodeImage(x), b->EncodeImage(x), 1e-2, 1e-2));
}

TEST(ClipModelTest, LoadWeightsNamesTheBadKey) {
  ClipModel model = TinyModel();
  std::map<std::string, torch::Tensor> weights;
  for (const auto& item : model->named_parameters()) weights[item.key()] = item.value().clone();

  auto missing = weights;
  missing.erase("visual.proj");
  EXPECT_THAT(model->LoadWeights(missing),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("visual.proj")));

  auto wrong_shape = weights;
  wrong_shape["ln_final.bias"] = torch::zeros({7});
  EXPECT_THAT(model->LoadWeights(wrong_shape),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ln_final.bias")));

  auto extra = weights;
  extra["visual.conv1.bias"] = torch::zeros({64});
  EXPECT_THAT(model->LoadWeights(extra),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("visual.conv1.bias")));
}

TEST(ClipModelTest, BadInputsBecomeErrors) {
  ClipModel model = TinyModel();
  auto call = [](auto fn) { return util::TorchCall("test", fn); };
  EXPECT_FALSE(call([&] { return model->EncodeImage(torch::zeros({1, 3, 31, 32})); }).ok());
  EXPECT_FALSE(call([&] { return model->EncodeImage(torch::zeros({3, 32, 32})); }).ok());
  EXPECT_FALSE(call([&] {
                 return model->EncodeImage(torch::zeros({1, 3, 32, 32}, torch::kLong));
               }).ok());
  VisualPrompts wrong_width{torch::zeros({2, 4, 65}), 0.01};
  EXPECT_FALSE(call([&] { return model->EncodeImage(Images(1), &wrong_width); }).ok());
  VisualPrompts too_deep{torch::zeros({3, 4, 64}), 0.01};
  EXPECT_FALSE(call([&] { return model->EncodeImage(Images(1), &too_deep); }).ok());
  VisualPrompts empty{torch::zeros({2, 0, 64}), 0.01};
  EXPECT_FALSE(call([&] { return model->EncodeImage(Images(1), &empty); }).ok());
  torch::Tensor big = Tokens();
  big.index_put_({0, 2}, 49408);
  EXPECT_THAT(call([&] { return model->EncodeText(big); }),
              StatusIs(absl::StatusCode::kInvalidArgument));
  torch::Tensor negative = Tokens();
  negative.index_put_({1, 5}, -1);
  EXPECT_FALSE(call([&] { return model->EncodeText(negative); }).ok());
  EXPECT_FALSE(call([&] { return model->EncodeText(torch::zeros({2, 76}, torch::kLong)); }).ok());
}

TEST(ClipModelTest, OptionsAreChecked) {
  ModelOptions bad_device;
  bad_device.device = "tpu:9";
  EXPECT_THAT(BuildRandomClipModel(TinyConfig(), bad_device),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ModelOptions half_cpu;
  half_cpu.dtype = torch::kFloat16;
  EXPECT_THAT(BuildRandomClipModel(TinyConfig(), half_cpu),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ModelOptions ints;
  ints.dtype = torch::kInt32;
  EXPECT_THAT(BuildRandomClipModel(TinyConfig(), ints),
              StatusIs(absl::StatusCode::kInvalidArgument));
  if (!torch::cuda::is_available()) {
    ModelOptions cuda;
    cuda.device = "cuda";
    EXPECT_THAT(BuildRandomClipModel(TinyConfig(), cuda),
                StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  ClipConfig broken = TinyConfig();
  broken.vision_heads = 3;  // 64 % 3 != 0
  EXPECT_THAT(BuildRandomClipModel(broken, ModelOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vision_heads")));
  broken = TinyConfig();
  broken.vocab_size = int64_t{1} << 40;
  EXPECT_THAT(BuildRandomClipModel(broken, ModelOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab_size")));
}

TEST(ClipModelTest, Bfloat16KeepsLayerNormInFloat32) {
  ModelOptions bf16;
  bf16.dtype = torch::kBFloat16;
  auto model = BuildRandomClipModel(TinyConfig(), bf16, 1);
  ASSERT_OK(model);
  for (const auto& item : (*model)->named_parameters()) {
    const bool fp32 = item.key().find("ln_") != std::string::npos || item.key() == "logit_scale";
    EXPECT_EQ(item.value().scalar_type(), fp32 ? torch::kFloat32 : torch::kBFloat16) << item.key();
  }
  torch::Tensor x = Images(2);
  auto out = util::TorchCall("bf16", [&] { return (*model)->EncodeImage(x); });
  ASSERT_OK(out);
  EXPECT_EQ(out->scalar_type(), torch::kFloat32);
  torch::Tensor ref = TinyModel(1)->EncodeImage(x);
  EXPECT_LT((*out - ref).abs().max().item<double>(), 0.1 * ref.abs().max().item<double>());
}

}  // namespace
}  // namespace provp::clip
