// Tests for core/provp/provp_options: variant names, defaults, range checks.
#include "core/provp/provp_options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::provp {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ProvpOptionsTest, VariantNamesRoundTrip) {
  for (const std::string& name : VariantNames()) {
    auto v = VariantFromName(name);
    ASSERT_OK(v);
    EXPECT_EQ(VariantName(*v), name);
  }
  EXPECT_EQ(VariantNames().size(), 5u);
  EXPECT_THAT(VariantFromName("vpt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("provp_ref")));
}

TEST(ProvpOptionsTest, VariantDefaults) {
  EXPECT_DOUBLE_EQ(DefaultOptionsFor(Variant::kProvpRef).alpha, 0.01);
  EXPECT_DOUBLE_EQ(DefaultOptionsFor(Variant::kProvpRef).ref_lambda, 1.0);
  EXPECT_DOUBLE_EQ(DefaultOptionsFor(Variant::kProvp).ref_lambda, 0.0);
  EXPECT_DOUBLE_EQ(DefaultOptionsFor(Variant::kProvp).alpha, 0.01);
  EXPECT_DOUBLE_EQ(DefaultOptionsFor(Variant::kVptDeep).alpha, 0.0);
  EXPECT_EQ(DefaultOptionsFor(Variant::kVptShallow).depth, 1);
  EXPECT_EQ(DefaultOptionsFor(Variant::kZeroShot).num_prompts, 0);
}

TEST(ProvpOptionsTest, ResolveFillsDepthAndForcesVariantRules) {
  auto all = ResolveOptions(DefaultOptionsFor(Variant::kProvpRef), 12);
  ASSERT_OK(all);
  EXPECT_EQ(all->depth, 12);
  ProvpOptions shallow = DefaultOptionsFor(Variant::kVptShallow);
  shallow.depth = 0;
  auto s = ResolveOptions(shallow, 12);
  ASSERT_OK(s);
  EXPECT_EQ(s->depth, 1);
  shallow.depth = 3;
  EXPECT_THAT(ResolveOptions(shallow, 12),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("depth")));
  auto z = ResolveOptions(DefaultOptionsFor(Variant::kZeroShot), 12);
  ASSERT_OK(z);
  EXPECT_EQ(z->num_prompts, 0);
  EXPECT_FALSE(HasPrompts(*z));
}

TEST(ProvpOptionsTest, ResolveRejectsOutOfRangeValuesNamingTheField) {
  ProvpOptions o;
  o.num_prompts = 0;
  EXPECT_THAT(ResolveOptions(o, 12),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_prompts")));
  o = ProvpOptions{};
  o.num_prompts = 1 << 20;
  EXPECT_THAT(ResolveOptions(o, 12),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_prompts")));
  o = ProvpOptions{};
  o.depth = 13;
  EXPECT_THAT(ResolveOptions(o, 12),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("depth")));
  o = ProvpOptions{};
  o.alpha = 1.5;
  EXPECT_THAT(ResolveOptions(o, 12),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alpha")));
  o = ProvpOptions{};
  o.ref_lambda = -1;
  EXPECT_THAT(ResolveOptions(o, 12),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ref_lambda")));
  o = ProvpOptions{};
  o.temperature = 0;
  EXPECT_THAT(ResolveOptions(o, 12),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
}

TEST(ProvpOptionsTest, ReferenceInitBound) {
  // METHOD.md: 0.066519 for ViT-B/16 (p hard-coded to 14); fixtures/tiny
  // config.json: 0.09154172965460301 for width 128.
  EXPECT_NEAR(ReferenceInitBound(768), 0.066519, 1e-6);
  EXPECT_NEAR(ReferenceInitBound(128), 0.09154172965460301, 1e-15);
}

}  // namespace
}  // namespace provp::provp
