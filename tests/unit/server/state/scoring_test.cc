// Top-k scoring: softmax over logit_scale * cosine, best first, ties to the
// lower class index, k clamped to the number of classes.
#include "server/state/scoring.h"

#include <numeric>

#include "gtest/gtest.h"

namespace provp::server {
namespace {

engine::FeatureMatrix Rows(std::vector<std::vector<float>> rows) {
  engine::FeatureMatrix m;
  m.rows = static_cast<int64_t>(rows.size());
  m.dim = static_cast<int64_t>(rows[0].size());
  for (const auto& r : rows) m.data.insert(m.data.end(), r.begin(), r.end());
  return m;
}

TEST(ScoringTest, BestClassFirstWithSoftmaxProbabilities) {
  const auto text = Rows({{1, 0}, {0, 1}, {0.6f, 0.8f}});
  const float image[] = {0, 1};
  ImageScores s = ScoreImage(image, text, 100.0, 2, /*all_probabilities=*/true);
  ASSERT_EQ(s.top.size(), 2u);
  EXPECT_EQ(s.top[0].class_index, 1);
  EXPECT_EQ(s.top[1].class_index, 2);
  EXPECT_NEAR(s.top[0].logit, 100.0, 1e-4);
  EXPECT_NEAR(s.top[1].logit, 80.0, 1e-4);
  ASSERT_EQ(s.all_probabilities.size(), 3u);
  EXPECT_NEAR(std::accumulate(s.all_probabilities.begin(), s.all_probabilities.end(), 0.0), 1.0,
              1e-12);
  EXPECT_DOUBLE_EQ(s.top[0].probability, s.all_probabilities[1]);
  // exp(100 - 80) ratio between the two best.
  EXPECT_NEAR(s.all_probabilities[1] / s.all_probabilities[2], std::exp(20.0),
              1e-3 * std::exp(20.0));
}

TEST(ScoringTest, TiesGoToTheLowerIndexAndKIsClamped) {
  const auto text = Rows({{1, 0}, {1, 0}, {0, 1}});
  const float image[] = {1, 0};
  ImageScores s = ScoreImage(image, text, 10.0, 10, /*all_probabilities=*/false);
  ASSERT_EQ(s.top.size(), 3u);
  EXPECT_EQ(s.top[0].class_index, 0);
  EXPECT_EQ(s.top[1].class_index, 1);
  EXPECT_EQ(s.top[2].class_index, 2);
  EXPECT_TRUE(s.all_probabilities.empty());
  EXPECT_TRUE(ScoreImage(image, text, 10.0, 0, false).top.empty());
}

TEST(ScoringTest, LargeLogitScalesStayFinite) {
  const auto text = Rows({{1, 0}, {0, 1}});
  const float image[] = {1, 0};
  ImageScores s = ScoreImage(image, text, 1e6, 2, true);
  EXPECT_DOUBLE_EQ(s.top[0].probability, 1.0);
  EXPECT_DOUBLE_EQ(s.top[1].probability, 0.0);
}

}  // namespace
}  // namespace provp::server
