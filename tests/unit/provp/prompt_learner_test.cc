// Tests for core/provp/prompt_learner: shape, seeded init within the bound,
// value replacement.
#include "core/provp/prompt_learner.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::provp {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

PromptLearnerOptions Options(uint64_t seed) {
  PromptLearnerOptions o;
  o.depth = 2;
  o.length = 8;
  o.width = 128;
  o.seed = seed;
  return o;
}

TEST(PromptLearnerTest, RegistersOneFp32ParameterInsideTheBound) {
  PromptLearner learner(Options(1));
  auto params = learner->named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params.begin()->key(), "prompts");
  const torch::Tensor& p = learner->prompts();
  EXPECT_EQ(p.sizes(), (std::vector<int64_t>{2, 8, 128}));
  EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(p.requires_grad());
  const double bound = 0.09154172965460301;
  EXPECT_NEAR(learner->init_bound(), bound, 1e-12);
  EXPECT_LE(p.abs().max().item<double>(), bound);
  // Uniform: mean ~0, and values spread across the range.
  EXPECT_NEAR(p.mean().item<double>(), 0.0, 0.01);
  EXPECT_GT(p.abs().max().item<double>(), 0.9 * bound);
  EXPECT_NEAR(p.var().item<double>(), bound * bound / 3.0, 0.1 * bound * bound / 3.0);
}

TEST(PromptLearnerTest, InitIsAFunctionOfTheSeed) {
  PromptLearner a(Options(7)), b(Options(7)), c(Options(8));
  EXPECT_TRUE(torch::equal(a->prompts(), b->prompts()));
  EXPECT_FALSE(torch::equal(a->prompts(), c->prompts()));
}

TEST(PromptLearnerTest, ExplicitBoundIsUsed) {
  PromptLearnerOptions o = Options(1);
  o.init_bound = 0.5;
  PromptLearner learner(o);
  EXPECT_LE(learner->prompts().abs().max().item<double>(), 0.5);
  EXPECT_GT(learner->prompts().abs().max().item<double>(), 0.4);
}

TEST(PromptLearnerTest, SetValuesChecksShapeAndKeepsTheParameter) {
  PromptLearner learner(Options(1));
  const void* before = learner->prompts().data_ptr();
  ASSERT_OK(learner->SetValues(torch::ones({2, 8, 128}, torch::kFloat64)));
  EXPECT_EQ(learner->prompts().data_ptr(), before);
  EXPECT_TRUE(torch::equal(learner->prompts(), torch::ones({2, 8, 128})));
  EXPECT_THAT(learner->SetValues(torch::ones({2, 8, 64})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[2,8,128]")));
  auto fwd = learner->ForForward(0.25);
  EXPECT_DOUBLE_EQ(fwd.alpha, 0.25);
  EXPECT_TRUE(fwd.prompts.is_same(learner->prompts()));
}

}  // namespace
}  // namespace provp::provp
