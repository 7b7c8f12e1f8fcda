// Tests for core/train/prompt_set: round trip, and the refusals: another
// backbone, another width, depth beyond the tower, inconsistent files.
#include "core/train/prompt_set.h"

#include <filesystem>

#include "core/clip/config.h"
#include "core/train/tensor_file.h"
#include "core/util/error_reason.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/train/train_test_util.h"

namespace provp::train {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;
using namespace ::provp::train::testing;  // NOLINT: test helpers

PromptSet TinySet() {
  const clip::ClipConfig cfg = clip::TinyConfig();
  TrainConfig tc;
  tc.model.num_prompts = 4;
  auto resolved = provp::ResolveOptions(tc.model, cfg.vision_layers);
  EXPECT_OK(resolved);
  TrainResult result;
  result.prompts = torch::randn({cfg.vision_layers, 4, cfg.vision_width});
  result.epochs_completed = 3;
  result.selected_epoch = 2;
  PromptSet set =
      PromptSetFromRun(*resolved, tc, result, cfg, "fp-a", {"cat", "dog"}, {"a photo of a {}."});
  set.info.evaluation = {{"top1", 0.75}};
  return set;
}

TEST(PromptSetTest, RoundTrip) {
  const std::string path = TempPath("set.safetensors");
  PromptSet set = TinySet();
  ASSERT_OK(SavePromptSet(path, set));
  auto back = LoadPromptSet(path, clip::TinyConfig(), "fp-a");
  ASSERT_OK(back);
  EXPECT_TRUE(torch::equal(back->prompts, set.prompts));
  EXPECT_EQ(back->info.model.variant, provp::Variant::kProvpRef);
  EXPECT_EQ(back->info.model.depth, 2);
  EXPECT_EQ(back->info.model.num_prompts, 4);
  EXPECT_DOUBLE_EQ(back->info.model.alpha, 0.01);
  EXPECT_EQ(back->info.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(back->info.templates, (std::vector<std::string>{"a photo of a {}."}));
  EXPECT_EQ(back->info.backbone_fingerprint, "fp-a");
  EXPECT_EQ(back->info.hyperparameters, set.info.hyperparameters);
  EXPECT_EQ(back->info.training_summary["selected_epoch"], 2);
  EXPECT_DOUBLE_EQ(back->info.evaluation["top1"].get<double>(), 0.75);
  std::filesystem::remove(path);
}

TEST(PromptSetTest, ForeignBackboneIsRefused) {
  const std::string path = TempPath("foreign.safetensors");
  ASSERT_OK(SavePromptSet(path, TinySet()));
  absl::StatusOr<PromptSet> foreign = LoadPromptSet(path, clip::TinyConfig(), "fp-b");
  EXPECT_THAT(foreign, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fp-a")));
  // The reason travels with the status (the server reports it as is).
  EXPECT_EQ(util::ErrorReasonOf(foreign.status()), util::kReasonBackboneMismatch);
  std::filesystem::remove(path);
}

TEST(PromptSetTest, MismatchedWidthOrDepthIsRefused) {
  const std::string path = TempPath("width.safetensors");
  ASSERT_OK(SavePromptSet(path, TinySet()));
  clip::ClipConfig wider = clip::TinyConfig();
  wider.vision_width = 128;
  absl::StatusOr<PromptSet> too_narrow = LoadPromptSet(path, wider, "fp-a");
  EXPECT_THAT(too_narrow, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("width 64")));
  EXPECT_EQ(util::ErrorReasonOf(too_narrow.status()), util::kReasonPromptShapeMismatch);
  clip::ClipConfig shallower = clip::TinyConfig();
  shallower.vision_layers = 1;
  EXPECT_THAT(LoadPromptSet(path, shallower, "fp-a"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("depth 2")));
  std::filesystem::remove(path);
}

TEST(PromptSetTest, InconsistentFilesAreInvalidArgument) {
  const std::string path = TempPath("bad.safetensors");
  PromptSet set = TinySet();
  set.prompts = torch::randn({2, 5, 64});  // metadata says m = 4
  ASSERT_OK(SavePromptSet(path, set));
  EXPECT_THAT(ReadPromptSet(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_prompts 4")));
  TensorFile bare;
  bare.tensors["prompts"] = torch::randn({2, 4, 64});
  ASSERT_OK(WriteTensorFile(path, bare));
  EXPECT_THAT(ReadPromptSet(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("provp.prompt_set")));
  std::filesystem::remove(path);
  EXPECT_THAT(ReadPromptSet(path), StatusIs(absl::StatusCode::kNotFound));
}

TEST(PromptSetTest, ZeroShotSetHasNoPrompts) {
  const std::string path = TempPath("zs.safetensors");
  PromptSet set;
  set.info.model = provp::DefaultOptionsFor(provp::Variant::kZeroShot);
  set.info.class_names = {"a"};
  ASSERT_OK(SavePromptSet(path, set));
  auto back = LoadPromptSet(path, clip::TinyConfig(), "anything");
  ASSERT_OK(back);
  EXPECT_FALSE(back->prompts.defined());
  EXPECT_EQ(back->info.model.variant, provp::Variant::kZeroShot);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace provp::train
