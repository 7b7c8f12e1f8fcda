// Tests for core/train/train_config: presets reproduce METHOD.md section 5,
// overrides merge with checks, JSON round-trips.
#include "core/train/train_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::train {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

TEST(TrainConfigTest, PresetsMatchTheReferenceConfigs) {
  struct Want {
    const char* name;
    int64_t epochs;
    double wd;
    bool ref;
    int64_t m;
  };
  const Want wants[] = {
      {"few_shot_1", 50, 1e-3, true, 50},     {"few_shot_1_no_ref", 50, 5e-4, false, 50},
      {"few_shot_2", 100, 5e-4, true, 50},    {"few_shot_2_no_ref", 100, 5e-4, false, 50},
      {"few_shot_4", 100, 5e-4, true, 50},    {"few_shot_4_no_ref", 100, 5e-4, false, 50},
      {"few_shot_8", 200, 5e-4, true, 50},    {"few_shot_16", 200, 5e-4, true, 50},
      {"base_to_novel", 100, 1e-3, true, 16},
  };
  for (const auto& w : wants) {
    auto c = PresetConfig(w.name);
    ASSERT_OK(c) << w.name;
    EXPECT_EQ(c->epochs, w.epochs) << w.name;
    EXPECT_DOUBLE_EQ(c->weight_decay, w.wd) << w.name;
    EXPECT_EQ(c->model.ref_lambda > 0, w.ref) << w.name;
    EXPECT_EQ(c->model.num_prompts, w.m) << w.name;
    EXPECT_DOUBLE_EQ(c->learning_rate, 0.1) << w.name;
    EXPECT_DOUBLE_EQ(c->momentum, 0.9) << w.name;
    EXPECT_EQ(c->batch_size, 32) << w.name;
    EXPECT_DOUBLE_EQ(c->model.alpha, 0.01) << w.name;
    EXPECT_EQ(c->selection, ModelSelection::kLastEpoch) << w.name;
    EXPECT_OK(ValidateConfig(*c)) << w.name;
  }
  EXPECT_THAT(PresetConfig("few_shot_3"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("few_shot_16")));
}

TEST(TrainConfigTest, PresetForShots) {
  auto one = PresetForShots(1);
  ASSERT_OK(one);
  EXPECT_EQ(one->preset, "few_shot_1");
  auto one_plain = PresetForShots(1, /*no_ref=*/true);
  ASSERT_OK(one_plain);
  EXPECT_EQ(one_plain->model.variant, provp::Variant::kProvp);
  EXPECT_FALSE(PresetForShots(8, true).ok());
  EXPECT_FALSE(PresetForShots(3).ok());
}

TEST(TrainConfigTest, OverridesMergeOntoAPreset) {
  auto c = ConfigFromJson({{"preset", "few_shot_4"},
                           {"epochs", 7},
                           {"lr", 0.5},
                           {"num_prompts", 8},
                           {"augment", {{"size", 64}}},
                           {"selection", "best_val"},
                           {"seed", 9}});
  ASSERT_OK(c);
  EXPECT_EQ(c->preset, "few_shot_4");
  EXPECT_EQ(c->epochs, 7);
  EXPECT_DOUBLE_EQ(c->learning_rate, 0.5);
  EXPECT_DOUBLE_EQ(c->weight_decay, 5e-4);
  EXPECT_EQ(c->model.num_prompts, 8);
  EXPECT_EQ(c->augment.size, 64);
  EXPECT_EQ(c->selection, ModelSelection::kBestValidation);
  EXPECT_EQ(c->seed, 9u);
}

TEST(TrainConfigTest, VariantOverrideAppliesTheVariantDefaults) {
  auto c = ConfigFromJson({{"preset", "few_shot_16"}, {"variant", "vpt_deep"}});
  ASSERT_OK(c);
  EXPECT_EQ(c->model.alpha, 0.0);
  EXPECT_EQ(c->model.num_prompts, 50);
  auto d = ConfigFromJson({{"preset", "few_shot_16"}, {"variant", "vpt_deep"}, {"alpha", 0.2}});
  ASSERT_OK(d);
  EXPECT_DOUBLE_EQ(d->model.alpha, 0.2);
}

TEST(TrainConfigTest, BadJsonNamesTheKey) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(ConfigFromJson({{"epoch", 3}}), StatusIs(kInvalid, HasSubstr("'epoch'")));
  EXPECT_THAT(ConfigFromJson({{"epochs", "3"}}), StatusIs(kInvalid, HasSubstr("'epochs'")));
  EXPECT_THAT(ConfigFromJson({{"epochs", -1}}), StatusIs(kInvalid, HasSubstr("epochs")));
  EXPECT_THAT(ConfigFromJson({{"batch_size", 1 << 20}}),
              StatusIs(kInvalid, HasSubstr("batch_size")));
  EXPECT_THAT(ConfigFromJson({{"momentum", 1.0}}), StatusIs(kInvalid, HasSubstr("momentum")));
  EXPECT_THAT(ConfigFromJson({{"augment", {{"mean", {1, 2}}}}}),
              StatusIs(kInvalid, HasSubstr("augment.mean")));
  EXPECT_THAT(ConfigFromJson({{"augment", {{"sizes", 2}}}}),
              StatusIs(kInvalid, HasSubstr("augment.sizes")));
  EXPECT_THAT(ConfigFromJson({{"variant", "clip"}}), StatusIs(kInvalid, HasSubstr("clip")));
  EXPECT_THAT(ConfigFromJson({{"seed", -4}}), StatusIs(kInvalid, HasSubstr("seed")));
  EXPECT_THAT(ConfigFromJson(nlohmann::json::array()), StatusIs(kInvalid));
}

TEST(TrainConfigTest, JsonRoundTrip) {
  auto c = ConfigFromJson({{"preset", "base_to_novel"},
                           {"temperature", 0.5},
                           {"depth", 3},
                           {"seed", 77},
                           {"augment", {{"flip_probability", 0.25}, {"std", {0.5, 0.5, 0.5}}}}});
  ASSERT_OK(c);
  auto back = ConfigFromJson(ConfigToJson(*c));
  ASSERT_OK(back);
  EXPECT_EQ(ConfigToJson(*back), ConfigToJson(*c));
  EXPECT_EQ(back->model.depth, 3);
  EXPECT_DOUBLE_EQ(back->augment.norm.std[2], 0.5);
}

}  // namespace
}  // namespace provp::train
