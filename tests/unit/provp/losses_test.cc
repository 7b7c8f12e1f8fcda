// Tests for core/provp/losses on plain tensors: the CE and Ref terms against
// a hand-written computation, lambda/temperature switches, gradients reach
// only the student, bad inputs are errors.
#include "core/provp/losses.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::provp {
namespace {

using ::provp::testing::StatusIs;

// -log softmax(row)[target], written out in double precision.
double RowCe(const torch::Tensor& row, int64_t target) {
  torch::Tensor r = row.to(torch::kFloat64);
  const double lse = std::log(r.exp().sum().item<double>());
  return lse - r[target].item<double>();
}

struct Batch {
  torch::Tensor student, frozen, text, labels;
};

Batch MakeBatch() {
  torch::manual_seed(3);
  Batch b;
  b.student = torch::randn({4, 6}) * 3;
  b.frozen = torch::randn({4, 6});
  b.text = torch::randn({3, 6}) * 2;
  b.labels = torch::tensor({0, 2, 1, 2}, torch::kInt64);
  return b;
}

TEST(LossesTest, MatchesHandComputation) {
  Batch b = MakeBatch();
  LossOptions o;
  o.ref_lambda = 0.7;
  o.temperature = 0.5;
  auto terms = ComputeLosses(b.student, b.frozen, b.text, b.labels, 100.0, o);
  ASSERT_OK(terms);
  torch::Tensor s = b.student.to(torch::kFloat64);
  s = s / s.norm(2, {1}, true);
  torch::Tensor t = b.text.to(torch::kFloat64);
  t = t / t.norm(2, {1}, true);
  torch::Tensor g = b.frozen.to(torch::kFloat64);
  g = g / g.norm(2, {1}, true);
  torch::Tensor logits = 100.0 * s.matmul(t.t());
  torch::Tensor sim = s.matmul(g.t()) / 0.5;
  double ce = 0, ref = 0;
  for (int i = 0; i < 4; ++i) {
    ce += RowCe(logits[i], b.labels[i].item<int64_t>()) / 4;
    ref += RowCe(sim[i], i) / 4;
  }
  EXPECT_TRUE(torch::allclose(terms->logits.to(torch::kFloat64), logits, 1e-5, 1e-4));
  EXPECT_EQ(terms->logits.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(terms->ce.item<double>(), ce, 1e-4);
  EXPECT_NEAR(terms->ref.item<double>(), ref, 1e-5);
  EXPECT_NEAR(terms->total.item<double>(), ce + 0.7 * ref, 1e-4);
}

TEST(LossesTest, RefIsOneDirectional) {
  // Swapping student and teacher changes the value: rows are the student.
  Batch b = MakeBatch();
  LossOptions o;
  auto ab = ComputeLosses(b.student, b.frozen, b.text, b.labels, 100.0, o);
  auto ba = ComputeLosses(b.frozen, b.student, b.text, b.labels, 100.0, o);
  ASSERT_OK(ab);
  ASSERT_OK(ba);
  EXPECT_GT(std::abs(ab->ref.item<double>() - ba->ref.item<double>()), 1e-6);
}

TEST(LossesTest, LambdaZeroSkipsTheTeacher) {
  Batch b = MakeBatch();
  LossOptions o;
  o.ref_lambda = 0.0;
  auto terms = ComputeLosses(b.student, torch::Tensor(), b.text, b.labels, 100.0, o);
  ASSERT_OK(terms);
  EXPECT_EQ(terms->ref.item<double>(), 0.0);
  EXPECT_EQ(terms->total.item<double>(), terms->ce.item<double>());
}

TEST(LossesTest, GradientReachesStudentButNotTeacher) {
  Batch b = MakeBatch();
  torch::Tensor student = b.student.clone().requires_grad_(true);
  torch::Tensor frozen = b.frozen.clone().requires_grad_(true);
  auto terms = ComputeLosses(student, frozen, b.text, b.labels, 100.0, LossOptions{});
  ASSERT_OK(terms);
  terms->total.backward();
  ASSERT_TRUE(student.grad().defined());
  EXPECT_GT(student.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(frozen.grad().defined());
}

TEST(LossesTest, BfloatInputsStillComputeInFp32) {
  Batch b = MakeBatch();
  auto terms = ComputeLosses(b.student.to(torch::kBFloat16), b.frozen.to(torch::kBFloat16), b.text,
                             b.labels, 100.0, LossOptions{});
  ASSERT_OK(terms);
  EXPECT_EQ(terms->total.scalar_type(), torch::kFloat32);
  EXPECT_EQ(terms->logits.scalar_type(), torch::kFloat32);
}

TEST(LossesTest, BadInputsAreInvalidArgument) {
  Batch b = MakeBatch();
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(ComputeLosses(b.student, b.frozen, b.text, torch::tensor({0, 1, 3, 0}), 100.0, {}),
              StatusIs(kInvalid, ::testing::HasSubstr("labels must be in [0, 3)")));
  EXPECT_THAT(ComputeLosses(b.student, b.frozen, b.text, torch::tensor({0, 1}), 100.0, {}),
              StatusIs(kInvalid));
  EXPECT_THAT(ComputeLosses(b.student, b.frozen, torch::randn({3, 5}), b.labels, 100.0, {}),
              StatusIs(kInvalid));
  EXPECT_THAT(ComputeLosses(b.student, torch::Tensor(), b.text, b.labels, 100.0, {}),
              StatusIs(kInvalid));
  EXPECT_THAT(ComputeLosses(torch::randn({4}), b.frozen, b.text, b.labels, 100.0, {}),
              StatusIs(kInvalid));
}

}  // namespace
}  // namespace provp::provp
