// Tests for core/train/trainer on a tiny random CLIP and a synthetic
// colour task: learning, bit-exact resume, progress, cancellation, the
// non-finite guard, model selection and refused resumes.
#include "core/train/trainer.h"

#include <atomic>
#include <filesystem>

#include "core/train/checkpoint.h"
#include "core/train/evaluation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/train/train_test_util.h"

namespace provp::train {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;
using namespace ::provp::train::testing;  // NOLINT: test helpers

std::unique_ptr<Trainer> MakeTrainer(TrainerOptions options, uint64_t clip_seed = 11) {
  auto t = Trainer::Create(TinyClip(clip_seed), std::move(options));
  EXPECT_OK(t);
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(TrainerTest, StepsPerEpochFollowsDropLast) {
  EXPECT_EQ(StepsPerEpoch(10, 32), 1);  // small set: one whole batch
  EXPECT_EQ(StepsPerEpoch(32, 32), 1);
  EXPECT_EQ(StepsPerEpoch(95, 32), 2);  // last 31 dropped
  EXPECT_EQ(StepsPerEpoch(0, 32), 0);
}

TEST(TrainerTest, LearnsASyntheticTaskWellAboveChance) {
  const int64_t classes = 4;
  TrainingSet data = ColorSquares(classes, 8);
  torch::Tensor text = RandomText(classes);
  TrainerOptions o;
  o.config = SmallConfig(12);
  o.config.learning_rate = 0.5;
  auto trainer = MakeTrainer(o);
  ASSERT_NE(trainer, nullptr);
  auto eval_set = MakeEvalSet(data.images, data.labels, 32);
  ASSERT_OK(eval_set);
  auto before =
      Evaluate(trainer->model().clip(), trainer->model().visual_prompts(), *eval_set, text);
  ASSERT_OK(before);
  auto result = trainer->Run(data, text);
  ASSERT_OK(result);
  auto after =
      Evaluate(trainer->model().clip(), trainer->model().visual_prompts(), *eval_set, text);
  ASSERT_OK(after);
  EXPECT_EQ(result->epochs_completed, 12);
  EXPECT_EQ(result->selected_epoch, 12);  // 1-based: the last
  EXPECT_EQ(result->steps, 12 * 4);
  EXPECT_GE(after->top1, 0.8) << "before " << before->top1;
  EXPECT_GT(after->top1, before->top1 + 0.25);
  EXPECT_GE(result->final_train_accuracy, 0.6);
  EXPECT_GT(result->final_ref, 0.0);
  EXPECT_TRUE(torch::equal(result->prompts, trainer->model().learner()->prompts().detach()));
}

TEST(TrainerTest, ResumeEndsWithBitIdenticalPrompts) {
  TrainingSet data = ColorSquares(3, 6);  // 18 images, batch 8: 2 steps/epoch
  torch::Tensor text = RandomText(3);
  TrainerOptions o;
  o.config = SmallConfig(4);
  auto straight = MakeTrainer(o);
  auto full = straight->Run(data, text);
  ASSERT_OK(full);

  const std::string path = TempPath("resume.safetensors");
  std::filesystem::remove(path);
  TrainerOptions interrupted = o;
  interrupted.checkpoint_path = path;
  interrupted.on_progress = [](const TrainProgress& p) {
    return !(p.kind == TrainProgress::Kind::kEpoch && p.epoch == 2);  // 1-based
  };
  auto first = MakeTrainer(interrupted);
  EXPECT_THAT(first->Run(data, text), StatusIs(absl::StatusCode::kCancelled));
  auto ck = LoadTrainCheckpoint(path);
  ASSERT_OK(ck);
  EXPECT_EQ(ck->epochs_completed, 2);
  EXPECT_TRUE(ck->momentum_buffer.defined());
  EXPECT_FALSE(torch::equal(ck->prompts, full->prompts));

  TrainerOptions resumed = o;
  resumed.checkpoint_path = path;
  auto second = MakeTrainer(resumed);  // fresh model: different init until restored
  auto rest = second->Run(data, text);
  ASSERT_OK(rest);
  EXPECT_EQ(rest->resumed_from_epoch, 2);
  EXPECT_EQ(rest->steps, 2 * 2);
  EXPECT_EQ(rest->history.size(), 4u);
  EXPECT_TRUE(torch::equal(rest->prompts, full->prompts));
  EXPECT_EQ(rest->final_loss, full->final_loss);
  std::filesystem::remove(path);
}

TEST(TrainerTest, RefusesACheckpointOfAnotherRun) {
  TrainingSet data = ColorSquares(3, 3);
  torch::Tensor text = RandomText(3);
  const std::string path = TempPath("other.safetensors");
  std::filesystem::remove(path);
  TrainerOptions o;
  o.config = SmallConfig(1);
  o.checkpoint_path = path;
  o.backbone_fingerprint = "backbone-a";
  ASSERT_OK(MakeTrainer(o)->Run(data, text));
  TrainerOptions other_lr = o;
  other_lr.config.learning_rate = 0.2;
  EXPECT_THAT(MakeTrainer(other_lr)->Run(data, text),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'learning_rate'")));
  TrainerOptions other_backbone = o;
  other_backbone.backbone_fingerprint = "backbone-b";
  EXPECT_THAT(MakeTrainer(other_backbone)->Run(data, text),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("backbone-a")));
  TrainingSet fewer = ColorSquares(3, 2);
  EXPECT_THAT(MakeTrainer(o)->Run(fewer, text),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("training set")));
  std::filesystem::remove(path);
}

TEST(TrainerTest, ReportsProgressPerStepAndEpoch) {
  TrainingSet data = ColorSquares(3, 6);
  torch::Tensor text = RandomText(3);
  TrainerOptions o;
  o.config = SmallConfig(3);
  std::vector<TrainProgress> reports;
  o.on_progress = [&](const TrainProgress& p) {
    reports.push_back(p);
    return true;
  };
  ASSERT_OK(MakeTrainer(o)->Run(data, text));
  ASSERT_EQ(reports.size(), 3u * 2 + 3);
  int steps = 0, epochs = 0;
  for (const auto& p : reports) {
    (p.kind == TrainProgress::Kind::kStep ? steps : epochs)++;
    EXPECT_EQ(p.epochs, 3);
    EXPECT_EQ(p.total_steps, 6);
    EXPECT_GT(p.ce, 0.0);
    EXPECT_GT(p.ref, 0.0);
    EXPECT_NEAR(p.loss, p.ce + p.ref, 1e-4);
    EXPECT_GE(p.train_accuracy, 0.0);
    EXPECT_LE(p.train_accuracy, 1.0);
    EXPECT_GE(p.eta_seconds, 0.0);
    EXPECT_GE(p.epoch, 1);  // 1-based
    EXPECT_LE(p.epoch, 3);
    EXPECT_DOUBLE_EQ(p.learning_rate, LearningRateForEpoch(ScheduleOf(o.config), p.epoch - 1));
  }
  EXPECT_EQ(steps, 6);
  EXPECT_EQ(epochs, 3);
  EXPECT_DOUBLE_EQ(reports.front().learning_rate, 1e-5);
  EXPECT_EQ(reports.back().kind, TrainProgress::Kind::kEpoch);
  EXPECT_EQ(reports.back().global_step, 6);
  EXPECT_DOUBLE_EQ(reports.back().eta_seconds, 0.0);
}

TEST(TrainerTest, CancelFlagAndCallbackStopTheRun) {
  TrainingSet data = ColorSquares(3, 6);
  torch::Tensor text = RandomText(3);
  std::atomic<bool> cancel{true};
  TrainerOptions o;
  o.config = SmallConfig(3);
  o.cancel = &cancel;
  EXPECT_THAT(MakeTrainer(o)->Run(data, text),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("epoch 1 step 1")));  // 1-based
  TrainerOptions by_callback;
  by_callback.config = SmallConfig(3);
  int calls = 0;
  by_callback.on_progress = [&](const TrainProgress& p) { return ++calls < 3; };
  EXPECT_THAT(MakeTrainer(by_callback)->Run(data, text), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 3);
}

TEST(TrainerTest, NonFiniteLossFailsTheRun) {
  TrainingSet data = ColorSquares(3, 3);
  torch::Tensor text = RandomText(3);
  text[1][0] = std::numeric_limits<float>::quiet_NaN();
  TrainerOptions o;
  o.config = SmallConfig(2);
  EXPECT_THAT(MakeTrainer(o)->Run(data, text),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("non-finite loss")));
}

TEST(TrainerTest, BestValidationSelectsTheBestEpoch) {
  TrainingSet data = ColorSquares(4, 4);
  torch::Tensor text = RandomText(4);
  auto val = MakeEvalSet(data.images, data.labels, 32);
  ASSERT_OK(val);
  TrainerOptions o;
  o.config = SmallConfig(4);
  o.config.learning_rate = 0.5;
  o.config.selection = ModelSelection::kBestValidation;
  auto trainer = MakeTrainer(o);
  EXPECT_THAT(trainer->Run(data, text),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("validation")));
  auto result = trainer->Run(data, text, &*val);
  ASSERT_OK(result);
  double best = -1;
  int64_t best_epoch = -1;
  for (const auto& h : result->history) {
    if (h["validation_accuracy"].get<double>() > best) {
      best = h["validation_accuracy"].get<double>();
      best_epoch = h["epoch"].get<int64_t>();
    }
  }
  EXPECT_EQ(result->selected_epoch, best_epoch);
  EXPECT_DOUBLE_EQ(result->best_validation_accuracy, best);
  auto check = Evaluate(trainer->model().clip(), trainer->model().visual_prompts(), *val, text);
  ASSERT_OK(check);
  EXPECT_DOUBLE_EQ(check->top1, best);
}

TEST(TrainerTest, ZeroShotTrainsNothing) {
  TrainerOptions o;
  o.config = SmallConfig(3);
  o.config.model = provp::DefaultOptionsFor(provp::Variant::kZeroShot);
  auto result = MakeTrainer(o)->Run(ColorSquares(3, 2), RandomText(3));
  ASSERT_OK(result);
  EXPECT_FALSE(result->prompts.defined());
  EXPECT_EQ(result->steps, 0);
}

TEST(TrainerTest, BadDataIsInvalidArgument) {
  TrainerOptions o;
  o.config = SmallConfig(1);
  auto trainer = MakeTrainer(o);
  TrainingSet data = ColorSquares(3, 2);
  data.labels[2] = 7;
  EXPECT_THAT(trainer->Run(data, RandomText(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label 7")));
  data = ColorSquares(3, 2);
  data.images[1] = data.images[1].to(torch::kFloat32);
  EXPECT_THAT(trainer->Run(data, RandomText(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("image 1")));
  EXPECT_THAT(trainer->Run(ColorSquares(3, 2), RandomText(3, 5)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(trainer->Run(TrainingSet{}, RandomText(3)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o.config.epochs = -2;
  EXPECT_THAT(Trainer::Create(TinyClip(), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("epochs")));
}

}  // namespace
}  // namespace provp::train
