// The `prepare` pipeline end to end with a smaller model than the default
// (so it runs in a few minutes): the pretrained model classifies DemoColors
// and DemoFashion zero-shot at >= 2x chance (DemoFashion in the pretraining
// style; its shifted test set needs the full model, see docs/quality.md;
// measured here: DemoColors 0.32, DemoFashion 0.70 in the pretraining style),
// its files load through clip::LoadCheckpoint with the tokenizer found next
// to them, and a second call reuses everything. DemoShapes is only printed:
// shape words are what the small model learns worst. Labelled "integration"
// (slow for a unit test).
#include "core/builtin/prepare.h"

#include <chrono>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/builtin/evaluate.h"
#include "core/builtin/scenes.h"
#include "core/clip/checkpoint_loader.h"
#include "core/data/loaders.h"
#include "tests/testing/status_matchers.h"

namespace provp::builtin {
namespace {

using ::provp::testing::StatusIs;

PrepareOptions SmallOptions(const std::string& dir) {
  PrepareOptions o;
  o.data_dir = dir;
  clip::ClipConfig& a = o.architecture;
  a.embed_dim = a.vision_width = a.text_width = 64;
  a.vision_heads = a.text_heads = 1;
  a.vision_layers = a.text_layers = 2;
  o.pretrain.steps = 500;
  o.pretrain.batch_size = 64;
  o.pretrain.learning_rate = 2e-3;
  o.pretrain.warmup_steps = 30;
  o.bpe_merges = 600;
  o.vocab_captions = 4000;
  o.sizes.train_per_class = 16;
  o.sizes.val_per_class = 2;
  o.sizes.test_per_class = 25;
  return o;
}

TEST(PrepareBuiltinTest, PretrainsAboveTwiceChanceAndCaches) {
  if (!std::filesystem::exists(std::string(kDefaultFashionMnistDir) +
                               "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  const std::string dir =
      (std::filesystem::temp_directory_path() / "provp_builtin_prepare_test").string();
  std::filesystem::remove_all(dir);
  const PrepareOptions options = SmallOptions(dir);

  auto first = PrepareBuiltin(options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->model_reused);
  EXPECT_FALSE(first->datasets_reused);
  const double shapes = first->zero_shot_accuracy.at("DemoShapes");
  for (const auto& [name, acc] : first->zero_shot_accuracy) {
    std::cout << "small model zero-shot " << name << ": " << acc << " (pretraining style "
              << first->zero_shot_pretrain_style.at(name) << ")\n";
  }
  std::cout << "pretraining took " << first->pretrain_seconds << " s\n";
  EXPECT_GE(first->zero_shot_accuracy.at("DemoColors"), 2.0 / 10);
  EXPECT_GE(first->zero_shot_pretrain_style.at("DemoFashion"), 2.0 / 10);

  // The weights load through the real checkpoint loader, tokenizer included.
  auto ck = clip::LoadCheckpoint(first->weights_path);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->layout, clip::CheckpointLayout::kOpenAISafetensors);
  EXPECT_EQ(ck->config.vision_width, 64);
  EXPECT_EQ(ck->config.vocab_size, first->vocab_size);
  EXPECT_EQ(std::filesystem::path(ck->tokenizer_dir), std::filesystem::path(first->model_dir));
  auto model = clip::BuildClipModel(*ck, clip::ModelOptions{});
  ASSERT_TRUE(model.ok()) << model.status();
  auto tok = text::Tokenizer::FromPath(ck->tokenizer_dir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  DemoSizes sizes = options.sizes;
  auto demo = MakeDemoShapes(sizes);
  ASSERT_TRUE(demo.ok());
  auto reloaded = ZeroShotAccuracy(*model, **tok, demo->class_names, demo->test);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_NEAR(*reloaded, shapes, 1e-9);

  // The datasets load through the CoOp loader.
  for (const auto& [name, ddir] : first->dataset_dirs) {
    auto loaded = data::LoadCoopDataset(ddir, name);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_GE(loaded->num_classes(), 10);
  }

  // Second run: everything cached, same figures, no training.
  const auto start = std::chrono::steady_clock::now();
  auto second = PrepareBuiltin(options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->model_reused);
  EXPECT_TRUE(second->datasets_reused);
  EXPECT_EQ(second->zero_shot_accuracy, first->zero_shot_accuracy);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
            first->pretrain_seconds);

  // Changed options invalidate the model cache.
  PrepareOptions changed = options;
  changed.pretrain.steps = 2;
  changed.pretrain.warmup_steps = 1;
  auto third = PrepareBuiltin(changed);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->model_reused);
  EXPECT_TRUE(third->datasets_reused);
}

TEST(PrepareBuiltinTest, EmptyDataDirIsRefused) {
  EXPECT_THAT(PrepareBuiltin(PrepareOptions()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::builtin
