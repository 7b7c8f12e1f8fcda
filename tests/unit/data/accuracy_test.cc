// Harmonic mean and seed statistics.
#include "core/data/accuracy.h"

#include "gtest/gtest.h"

namespace provp::data {
namespace {

TEST(AccuracyTest, HarmonicMeanMatchesThePaperAverageRow) {
  // METHOD.md section 6: 2*85.20*73.22/(85.20+73.22) = 78.76.
  EXPECT_NEAR(HarmonicMean(85.20, 73.22), 78.76, 0.005);
  EXPECT_DOUBLE_EQ(HarmonicMean(50.0, 50.0), 50.0);
  EXPECT_DOUBLE_EQ(HarmonicMean(0.0, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(HarmonicMean(100.0, 0.0), 0.0);
}

TEST(AccuracyTest, MeanAndPopulationStd) {
  // Python: statistics.pstdev([1, 2, 4]) = 1.247219128924647 (= np.std).
  MeanStd s = ComputeMeanStd({1.0, 2.0, 4.0});
  EXPECT_NEAR(s.mean, 7.0 / 3.0, 1e-12);
  EXPECT_NEAR(s.std, 1.2472191289246473, 1e-12);
  MeanStd one = ComputeMeanStd({5.0});
  EXPECT_DOUBLE_EQ(one.mean, 5.0);
  EXPECT_DOUBLE_EQ(one.std, 0.0);
  MeanStd none = ComputeMeanStd({});
  EXPECT_DOUBLE_EQ(none.mean, 0.0);
}

}  // namespace
}  // namespace provp::data
