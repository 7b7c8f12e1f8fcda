// The torch-free tuning vocabulary: which preset a request gets, how a
// variant and explicit values lay over it, and that every cap names its
// field (as a payload, not only in the message).
#include "core/train/hyperparameters.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::train {
namespace {

using ::provp::testing::StatusIs;

HyperparameterRequest Shots(int64_t shots) {
  HyperparameterRequest r;
  r.shots = shots;
  return r;
}

TEST(HyperparametersTest, PresetFollowsTheShotLadderAndTheNovelSplit) {
  EXPECT_EQ(DefaultPresetName(1, false), "few_shot_1");
  EXPECT_EQ(DefaultPresetName(3, false), "few_shot_2");  // largest rung <= 3
  EXPECT_EQ(DefaultPresetName(100, false), "few_shot_16");
  EXPECT_EQ(DefaultPresetName(4, true), "base_to_novel");
  auto three = ResolveHyperparameters(Shots(3));
  ASSERT_OK(three);
  EXPECT_EQ(three->preset, "few_shot_2");
  EXPECT_EQ(three->shots, 3);
  EXPECT_EQ(three->epochs, 100);
  EXPECT_EQ(three->num_prompts, 50);
  EXPECT_DOUBLE_EQ(three->learning_rate, 0.1);
  EXPECT_EQ(three->batch_size, 32);
  EXPECT_EQ(three->variant, "provp_ref");
  EXPECT_TRUE(three->use_ref);
  EXPECT_DOUBLE_EQ(three->ref_lambda, 1.0);
  EXPECT_DOUBLE_EQ(three->min_crop_scale, 0.08);
  EXPECT_EQ(three->selection, "last");
  HyperparameterRequest b2n = Shots(16);
  b2n.has_novel_classes = true;
  auto r = ResolveHyperparameters(b2n);
  ASSERT_OK(r);
  EXPECT_EQ(r->preset, "base_to_novel");
  EXPECT_EQ(r->num_prompts, 16);
  EXPECT_DOUBLE_EQ(r->weight_decay, 1e-3);
}

TEST(HyperparametersTest, VariantThenExplicitValuesOverThePreset) {
  HyperparameterRequest req = Shots(4);
  req.preset = "few_shot_4_no_ref";
  auto plain = ResolveHyperparameters(req);
  ASSERT_OK(plain);
  EXPECT_EQ(plain->variant, "provp");
  EXPECT_FALSE(plain->use_ref);
  req.variant = "vpt_shallow";
  req.epochs = 7;
  req.learning_rate = 0.5;
  req.min_crop_scale = 1.0;
  req.selection = "best_val";
  auto r = ResolveHyperparameters(req);
  ASSERT_OK(r);
  EXPECT_EQ(r->depth, 1);
  EXPECT_EQ(r->num_prompts, 50);  // the preset's m stays
  EXPECT_EQ(r->epochs, 7);
  EXPECT_DOUBLE_EQ(r->learning_rate, 0.5);
  EXPECT_DOUBLE_EQ(r->min_crop_scale, 1.0);
  EXPECT_EQ(r->selection, "best_val");
  HyperparameterRequest off = Shots(8);
  off.use_ref = false;
  auto no_ref = ResolveHyperparameters(off);
  ASSERT_OK(no_ref);
  EXPECT_DOUBLE_EQ(no_ref->ref_lambda, 0.0);
  EXPECT_FALSE(no_ref->use_ref);
  HyperparameterRequest on = Shots(1);
  on.variant = "provp";
  on.use_ref = true;
  auto with_ref = ResolveHyperparameters(on);
  ASSERT_OK(with_ref);
  EXPECT_DOUBLE_EQ(with_ref->ref_lambda, 1.0);
}

TEST(HyperparametersTest, EveryCapNamesItsField) {
  struct Case {
    const char* field;
    HyperparameterRequest request;
  };
  std::vector<Case> cases;
  auto add = [&](const char* field, auto set) {
    HyperparameterRequest r = Shots(2);
    set(r);
    cases.push_back({field, r});
  };
  add("shots", [](HyperparameterRequest& r) { r.shots = 0; });
  add("shots", [](HyperparameterRequest& r) { r.shots = kMaxShots + 1; });
  add("epochs", [](HyperparameterRequest& r) { r.epochs = kMaxEpochs + 1; });
  add("batch_size", [](HyperparameterRequest& r) { r.batch_size = kMaxBatchSize + 1; });
  add("num_prompts", [](HyperparameterRequest& r) { r.num_prompts = kMaxNumPrompts + 1; });
  add("learning_rate", [](HyperparameterRequest& r) { r.learning_rate = 0.0; });
  add("learning_rate", [](HyperparameterRequest& r) { r.learning_rate = kMaxLearningRate * 2; });
  add("alpha", [](HyperparameterRequest& r) { r.alpha = 1.5; });
  add("ref_lambda", [](HyperparameterRequest& r) { r.ref_lambda = -1; });
  add("weight_decay", [](HyperparameterRequest& r) { r.weight_decay = 2; });
  add("min_crop_scale", [](HyperparameterRequest& r) { r.min_crop_scale = 0.0; });
  add("preset", [](HyperparameterRequest& r) { r.preset = "few_shot_3"; });
  add("variant", [](HyperparameterRequest& r) { r.variant = "vpt"; });
  add("selection", [](HyperparameterRequest& r) { r.selection = "best_test"; });
  for (const Case& c : cases) {
    auto r = ResolveHyperparameters(c.request);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument)) << c.field;
    EXPECT_EQ(InvalidHyperparameterField(r.status()), c.field);
  }
  EXPECT_EQ(InvalidHyperparameterField(absl::InvalidArgumentError("x")), "");
}

TEST(HyperparametersTest, NamesForHelpTexts) {
  EXPECT_EQ(JoinedShotLadder(), "1, 2, 4, 8, 16");
  EXPECT_EQ(JoinedVariantNames(false), "provp_ref, provp, vpt_deep, vpt_shallow");
  EXPECT_TRUE(IsPresetName("imagenet"));
  EXPECT_FALSE(IsPresetName("few_shot_3"));
  EXPECT_TRUE(IsSelectionName("best_val"));
  EXPECT_EQ(LadderShots(0), 1);
  EXPECT_EQ(LadderShots(15), 8);
}

}  // namespace
}  // namespace provp::train
