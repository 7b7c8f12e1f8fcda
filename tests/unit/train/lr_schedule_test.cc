// Tests for core/train/lr_schedule: warm-up, the cosine and its end points.
#include "core/train/lr_schedule.h"

#include <cmath>

#include "gtest/gtest.h"

namespace provp::train {
namespace {

TEST(LrScheduleTest, ReferenceValues) {
  LrScheduleOptions o;  // lr 0.1, T 200, warm-up 1 epoch at 1e-5
  EXPECT_DOUBLE_EQ(LearningRateForEpoch(o, 0), 1e-5);
  EXPECT_DOUBLE_EQ(LearningRateForEpoch(o, 1), 0.1);
  EXPECT_NEAR(LearningRateForEpoch(o, 101), 0.05, 1e-15);
  EXPECT_NEAR(LearningRateForEpoch(o, 2), 0.05 * (1 + std::cos(M_PI / 200)), 1e-15);
  // METHOD.md: with T = 200 the final epoch runs at about 2.5e-5, never 0.
  EXPECT_NEAR(LearningRateForEpoch(o, 199), 2.467e-5, 1e-8);
  EXPECT_GT(LearningRateForEpoch(o, 199), 0.0);
}

TEST(LrScheduleTest, DecreasesAfterWarmup) {
  LrScheduleOptions o;
  o.epochs = 50;
  for (int e = 2; e < 50; ++e)
    EXPECT_LT(LearningRateForEpoch(o, e), LearningRateForEpoch(o, e - 1)) << e;
}

TEST(LrScheduleTest, ConfigurableWarmup) {
  LrScheduleOptions o;
  o.base_lr = 2.0;
  o.epochs = 10;
  o.warmup_epochs = 0;
  o.warmup_lr = 1e-3;
  EXPECT_DOUBLE_EQ(LearningRateForEpoch(o, 0), 2.0);
  EXPECT_NEAR(LearningRateForEpoch(o, 5), 1.0, 1e-12);
  o.warmup_epochs = 2;
  EXPECT_DOUBLE_EQ(LearningRateForEpoch(o, 1), 1e-3);
  EXPECT_DOUBLE_EQ(LearningRateForEpoch(o, 2), 2.0);
}

}  // namespace
}  // namespace provp::train
