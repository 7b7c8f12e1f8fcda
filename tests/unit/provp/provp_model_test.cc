// Tests for core/provp/provp_model on a tiny random CLIP: only the prompts
// get gradients, the variant switches change the forward the way they
// claim, the teacher pass carries no graph.
#include "core/provp/provp_model.h"

#include "core/clip/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::provp {
namespace {

using ::provp::testing::StatusIs;

clip::ClipModel TinyClip() {
  auto m = clip::BuildRandomClipModel(clip::TinyConfig(), clip::ModelOptions{}, 11);
  EXPECT_OK(m);
  return *m;
}

torch::Tensor Images(int64_t b) {
  torch::manual_seed(5);
  return torch::randn({b, 3, 32, 32});
}

std::unique_ptr<ProvpModel> Make(const ProvpOptions& o, uint64_t seed = 1) {
  auto m = ProvpModel::Create(TinyClip(), o, seed);
  EXPECT_OK(m);
  return m.ok() ? *std::move(m) : nullptr;
}

ProvpOptions Opts(Variant v, int64_t m = 4) {
  ProvpOptions o = DefaultOptionsFor(v);
  if (v != Variant::kZeroShot) o.num_prompts = m;
  return o;
}

TEST(ProvpModelTest, OnlyPromptsReceiveGradients) {
  auto model = Make(Opts(Variant::kProvpRef));
  ASSERT_NE(model, nullptr);
  torch::Tensor text = torch::randn({3, clip::TinyConfig().embed_dim});
  auto terms = model->Loss(Images(4), torch::tensor({0, 1, 2, 0}), text);
  ASSERT_OK(terms);
  EXPECT_GT(terms->ref.item<double>(), 0.0);
  terms->total.backward();
  for (const auto& p : model->clip()->named_parameters()) {
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
    EXPECT_FALSE(p.value().grad().defined()) << p.key();
  }
  auto params = model->trainable_parameters();
  ASSERT_EQ(params.size(), 1u);
  ASSERT_TRUE(params[0].grad().defined());
  // Every prompted layer gets a gradient.
  torch::Tensor per_layer = params[0].grad().abs().sum({1, 2});
  EXPECT_GT(per_layer.min().item<double>(), 0.0);
}

TEST(ProvpModelTest, FrozenPassHasNoGraphAndIgnoresPrompts) {
  auto model = Make(Opts(Variant::kProvpRef));
  ASSERT_NE(model, nullptr);
  auto frozen = model->EncodeFrozen(Images(2));
  ASSERT_OK(frozen);
  EXPECT_FALSE(frozen->requires_grad());
  torch::Tensor plain;
  {
    torch::NoGradGuard g;
    plain = model->clip()->EncodeImage(Images(2), nullptr);
  }
  EXPECT_TRUE(torch::equal(*frozen, plain));
  auto student = model->EncodeImages(Images(2));
  ASSERT_OK(student);
  EXPECT_TRUE(student->requires_grad());
  EXPECT_FALSE(torch::allclose(*student, plain));
}

TEST(ProvpModelTest, VptShallowStopsAfterTheFirstLayer) {
  // With depth 1 no blend happens before layer 1. That equals a depth-2
  // model whose layer-1 blend keeps the previous output (alpha 1), whatever
  // its second prompt holds.
  auto shallow = Make(Opts(Variant::kVptShallow));
  ProvpOptions deep_opts = Opts(Variant::kProvpRef);
  deep_opts.alpha = 1.0;
  auto deep = Make(deep_opts);
  ASSERT_NE(shallow, nullptr);
  ASSERT_NE(deep, nullptr);
  EXPECT_EQ(shallow->learner()->prompts().size(0), 1);
  EXPECT_EQ(deep->learner()->prompts().size(0), 2);
  torch::Tensor p = deep->learner()->prompts().detach().clone();
  p[1].fill_(3.0);
  ASSERT_OK(deep->SetPrompts(p));
  ASSERT_OK(shallow->SetPrompts(p.narrow(0, 0, 1)));
  auto a = shallow->EncodeImages(Images(2));
  auto b = deep->EncodeImages(Images(2));
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_TRUE(torch::allclose(*a, *b, 1e-5, 1e-6));
  // And with a real blend (alpha < 1) the second layer's prompt matters.
  ProvpOptions blend = Opts(Variant::kProvpRef);
  auto blended = Make(blend);
  ASSERT_OK(blended->SetPrompts(p));
  auto c = blended->EncodeImages(Images(2));
  ASSERT_OK(c);
  EXPECT_FALSE(torch::allclose(*a, *c, 1e-4, 1e-5));
}

TEST(ProvpModelTest, VptDeepReplacesThePromptSlots) {
  auto deep = Make(Opts(Variant::kVptDeep));
  ASSERT_NE(deep, nullptr);
  ASSERT_NE(deep->visual_prompts(), nullptr);
  EXPECT_EQ(deep->visual_prompts()->alpha, 0.0);
  EXPECT_EQ(deep->options().ref_lambda, 0.0);
  // alpha 0 is the continuous limit of the blend (not a special value), and
  // differs from ProVP's 0.01.
  ProvpOptions tiny = Opts(Variant::kProvpRef);
  tiny.alpha = 1e-7;
  ProvpOptions provp = Opts(Variant::kProvpRef);
  auto near = Make(tiny);
  auto ref = Make(provp);
  auto a = deep->EncodeImages(Images(2));
  auto b = near->EncodeImages(Images(2));
  auto c = ref->EncodeImages(Images(2));
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_TRUE(torch::allclose(*a, *b, 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(*a, *c, 1e-5, 1e-5));
}

TEST(ProvpModelTest, ZeroShotHasNoPrompts) {
  auto zs = Make(Opts(Variant::kZeroShot));
  ASSERT_NE(zs, nullptr);
  EXPECT_EQ(zs->visual_prompts(), nullptr);
  EXPECT_TRUE(zs->trainable_parameters().empty());
  EXPECT_THAT(zs->SetPrompts(torch::zeros({1, 1, 64})),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ProvpModelTest, PromptInitFollowsTheSeed) {
  auto a = Make(Opts(Variant::kProvpRef), 3);
  auto b = Make(Opts(Variant::kProvpRef), 3);
  auto c = Make(Opts(Variant::kProvpRef), 4);
  EXPECT_TRUE(torch::equal(a->learner()->prompts(), b->learner()->prompts()));
  EXPECT_FALSE(torch::equal(a->learner()->prompts(), c->learner()->prompts()));
}

TEST(ProvpModelTest, RejectsBadOptionsAndInputs) {
  ProvpOptions o = Opts(Variant::kProvpRef);
  o.depth = 5;  // tiny CLIP has 2 layers
  EXPECT_THAT(ProvpModel::Create(TinyClip(), o, 1), StatusIs(absl::StatusCode::kInvalidArgument));
  auto model = Make(Opts(Variant::kProvpRef));
  EXPECT_FALSE(model->EncodeImages(torch::randn({2, 3, 16, 16})).ok());
  EXPECT_FALSE(model->Loss(Images(2), torch::tensor({0, 5}), torch::randn({3, 32})).ok());
}

}  // namespace
}  // namespace provp::provp
