// Linear probe: learns a separable task from few rows, picks its L2 strength
// on the validation rows, beats chance on frozen features of the synthetic
// colour task, and refuses bad input with a reason.
#include "core/train/linear_probe.h"

#include <algorithm>

#include "core/train/evaluation.h"
#include "gtest/gtest.h"
#include "tests/unit/train/train_test_util.h"

namespace provp::train {
namespace {

// `per_class` points per class around random unit centres in `dim`
// dimensions, with Gaussian noise `sigma`.
struct Points {
  torch::Tensor x;
  std::vector<int64_t> y;
};

Points Clusters(int64_t classes, int64_t per_class, int64_t dim, double sigma, uint64_t seed) {
  torch::manual_seed(77);  // the same centres for every split
  torch::Tensor centres = torch::randn({classes, dim});
  centres = centres / centres.norm(2, {-1}, true);
  torch::manual_seed(seed);
  Points p;
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < per_class; ++i) {
    for (int64_t c = 0; c < classes; ++c) {
      rows.push_back(centres[c] + sigma * torch::randn({dim}));
      p.y.push_back(c);
    }
  }
  p.x = torch::stack(rows);
  return p;
}

TEST(LinearProbeTest, LearnsSeparableClustersFromFewShots) {
  const Points train = Clusters(5, 4, 32, 0.15, 1);
  const Points val = Clusters(5, 2, 32, 0.15, 2);
  const Points test = Clusters(5, 50, 32, 0.15, 3);
  auto probe = FitLinearProbe(train.x, train.y, val.x, val.y, 5);
  ASSERT_TRUE(probe.ok()) << probe.status();
  const std::vector<double> grid = DefaultL2Grid();
  EXPECT_NE(std::find(grid.begin(), grid.end(), probe->l2), grid.end());
  EXPECT_EQ(probe->weight.sizes(), (std::vector<int64_t>{5, 32}));
  auto acc = LinearProbeAccuracy(*probe, test.x, test.y);
  ASSERT_TRUE(acc.ok()) << acc.status();
  EXPECT_GE(*acc, 0.95);
}

TEST(LinearProbeTest, ReportsTheValidationAccuracyOfTheChosenStrength) {
  // Overlapping clusters: not every strength scores the same on val.
  const Points train = Clusters(4, 8, 16, 0.6, 4);
  const Points val = Clusters(4, 6, 16, 0.6, 5);
  LinearProbeOptions o;
  o.l2_grid = {1e-5, 1e-2, 3.0};
  auto probe = FitLinearProbe(train.x, train.y, val.x, val.y, 4, o);
  ASSERT_TRUE(probe.ok()) << probe.status();
  auto val_acc = LinearProbeAccuracy(*probe, val.x, val.y);
  ASSERT_TRUE(val_acc.ok());
  EXPECT_DOUBLE_EQ(*val_acc, probe->validation_top1);
  for (double l2 : o.l2_grid) {
    LinearProbeOptions one;
    one.l2_grid = {l2};
    auto other = FitLinearProbe(train.x, train.y, val.x, val.y, 4, one);
    ASSERT_TRUE(other.ok());
    EXPECT_LE(other->validation_top1, probe->validation_top1) << "l2 " << l2;
  }
}

TEST(LinearProbeTest, StrongerRegularisationShrinksTheWeights) {
  const Points train = Clusters(3, 5, 8, 0.3, 6);
  LinearProbeOptions weak, strong;
  weak.l2_grid = {1e-4};
  strong.l2_grid = {1.0};
  auto a = FitLinearProbe(train.x, train.y, train.x, train.y, 3, weak);
  auto b = FitLinearProbe(train.x, train.y, train.x, train.y, 3, strong);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(a->weight.norm().item<double>(), 3 * b->weight.norm().item<double>());
}

TEST(LinearProbeTest, FrozenFeaturesOfTheColourTaskBeatChance) {
  clip::ClipModel model = testing::TinyClip();
  const int64_t res = model->config().image_resolution;
  const TrainingSet train = testing::ColorSquares(4, 4, 1);
  const TrainingSet val = testing::ColorSquares(4, 2, 2);
  const TrainingSet test = testing::ColorSquares(4, 10, 3);
  auto features = [&](const TrainingSet& s) {
    auto set = MakeEvalSet(s.images, s.labels, res);
    EXPECT_TRUE(set.ok()) << set.status();
    auto f = FrozenImageFeatures(model, set->images, /*batch_size=*/5);
    EXPECT_TRUE(f.ok()) << f.status();
    return *f;
  };
  const torch::Tensor tx = features(train), vx = features(val), sx = features(test);
  EXPECT_NEAR(tx.norm(2, {-1}).min().item<double>(), 1.0, 1e-5);
  auto probe = FitLinearProbe(tx, train.labels, vx, val.labels, 4);
  ASSERT_TRUE(probe.ok()) << probe.status();
  auto acc = LinearProbeAccuracy(*probe, sx, test.labels);
  ASSERT_TRUE(acc.ok());
  EXPECT_GE(*acc, 0.75);  // chance 0.25
}

TEST(LinearProbeTest, RefusesBadInput) {
  const Points p = Clusters(3, 2, 4, 0.1, 1);
  EXPECT_EQ(FitLinearProbe(p.x, p.y, p.x, p.y, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<int64_t> bad = p.y;
  bad[0] = 3;
  EXPECT_EQ(FitLinearProbe(p.x, bad, p.x, p.y, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitLinearProbe(p.x, p.y, p.x.narrow(1, 0, 3), p.y, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitLinearProbe(p.x, {0, 1}, p.x, p.y, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  LinearProbeOptions o;
  o.l2_grid = {0.0};
  EXPECT_EQ(FitLinearProbe(p.x, p.y, p.x, p.y, 3, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LinearProbeAccuracy(LinearProbe{}, p.x, p.y).status().code(),
            absl::StatusCode::kInvalidArgument);
  clip::ClipModel model = testing::TinyClip();
  EXPECT_EQ(FrozenImageFeatures(model, torch::zeros({2, 3})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace provp::train
