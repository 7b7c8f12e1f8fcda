// Tests for core/train/evaluation: accuracy bookkeeping on a case whose
// answer is known by construction, the uint8 path, the HM helper.
#include "core/train/evaluation.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/train/train_test_util.h"

namespace provp::train {
namespace {

using ::provp::testing::StatusIs;
using namespace ::provp::train::testing;  // NOLINT: test helpers

// "Text" features equal to the images' own features: image i is nearest
// to class i by construction (cosine 1).
struct SelfClassified {
  clip::ClipModel model = TinyClip();
  EvalSet set;
  torch::Tensor text;
  SelfClassified() {
    torch::manual_seed(9);
    set.images = torch::randn({4, 3, 32, 32});
    set.labels = {0, 1, 2, 3};
    torch::NoGradGuard g;
    text = model->EncodeImage(set.images, nullptr);
  }
};

TEST(EvaluationTest, CountsTopOneTopFiveAndPerClass) {
  SelfClassified s;
  auto r = Evaluate(s.model, nullptr, s.set, s.text, /*batch_size=*/3);
  ASSERT_OK(r);
  EXPECT_EQ(r->num_images, 4);
  EXPECT_DOUBLE_EQ(r->top1, 1.0);
  EXPECT_DOUBLE_EQ(r->top5, 1.0);  // top-min(5, C) = top-4
  EXPECT_EQ(r->per_class_accuracy, std::vector<double>(4, 1.0));
  EXPECT_EQ(r->per_class_count, std::vector<int64_t>(4, 1));

  s.set.labels = {1, 0, 0, 3};
  auto shifted = Evaluate(s.model, nullptr, s.set, s.text);
  ASSERT_OK(shifted);
  EXPECT_DOUBLE_EQ(shifted->top1, 0.25);
  EXPECT_EQ(shifted->per_class_count, (std::vector<int64_t>{2, 1, 0, 1}));
  EXPECT_EQ(shifted->per_class_accuracy, (std::vector<double>{0.0, 0.0, 0.0, 1.0}));
  EXPECT_DOUBLE_EQ(shifted->mean_per_class_accuracy, 1.0 / 3.0);
  auto json = EvalResultToJson(*shifted);
  EXPECT_DOUBLE_EQ(json["top1"].get<double>(), 0.25);
}

TEST(EvaluationTest, Uint8PathMatchesPreprocessedPath) {
  clip::ClipModel model = TinyClip();
  TrainingSet data = ColorSquares(3, 2);
  torch::Tensor text = RandomText(3);
  auto set = MakeEvalSet(data.images, data.labels, 32);
  ASSERT_OK(set);
  auto a = Evaluate(model, nullptr, *set, text);
  auto b = EvaluateImages(model, nullptr, data.images, data.labels, text, 32, /*batch_size=*/4);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->top1, b->top1);
  EXPECT_EQ(a->per_class_accuracy, b->per_class_accuracy);
}

TEST(EvaluationTest, BadInputsAreInvalidArgument) {
  SelfClassified s;
  s.set.labels = {0, 1, 2, 4};
  EXPECT_THAT(Evaluate(s.model, nullptr, s.set, s.text),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("label 4")));
  s.set.labels = {0, 1};
  EXPECT_THAT(Evaluate(s.model, nullptr, s.set, s.text),
              StatusIs(absl::StatusCode::kInvalidArgument));
  s.set.labels = {0, 1, 2, 3};
  EXPECT_THAT(Evaluate(s.model, nullptr, s.set, torch::randn({4, 7})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeEvalSet({torch::zeros({4, 4}, torch::kUInt8)}, {0}, 32),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::train
