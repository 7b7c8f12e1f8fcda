// Demo datasets: sizes, determinism, and that what WriteCoopDataset writes
// goes through the project's CoOp loader, few-shot sampler and base/novel
// split, with images decoding to the generated pixels.
#include "core/builtin/demo_datasets.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/builtin/scenes.h"
#include "core/data/base_novel.h"
#include "core/data/few_shot.h"
#include "core/data/loaders.h"
#include "core/image/image_io.h"
#include "tests/testing/status_matchers.h"

namespace provp::builtin {
namespace {

using ::provp::testing::StatusIs;

DemoSizes Small() {
  DemoSizes s;
  s.train_per_class = 16;
  s.val_per_class = 2;
  s.test_per_class = 3;
  return s;
}

TEST(DemoDatasetsTest, ShapesHaveTwelveClassesAndRequestedSizes) {
  auto d = MakeDemoShapes(Small());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "DemoShapes");
  EXPECT_EQ(d->class_names.size(), 12u);
  EXPECT_EQ(d->train.size(), 12u * 16);
  EXPECT_EQ(d->val.size(), 12u * 2);
  EXPECT_EQ(d->test.size(), 12u * 3);
  EXPECT_EQ(d->train[0].image.height, 32);
}

TEST(DemoDatasetsTest, SameSeedSameImages) {
  auto a = MakeDemoShapes(Small());
  auto b = MakeDemoShapes(Small());
  DemoSizes other = Small();
  other.seed = 8;
  auto c = MakeDemoShapes(other);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->test[5].image.rgb, b->test[5].image.rgb);
  EXPECT_NE(a->test[5].image.rgb, c->test[5].image.rgb);
}

TEST(DemoDatasetsTest, BadSizesAreRefused) {
  DemoSizes s = Small();
  s.train_per_class = 0;
  EXPECT_THAT(MakeDemoShapes(s).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  FashionMnist tiny;
  tiny.rows = tiny.cols = 28;
  tiny.labels = {0, 1};
  tiny.pixels.assign(2 * 28 * 28, 0);
  EXPECT_THAT(MakeDemoFashion(tiny, Small()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(DemoDatasetsTest, WrittenDatasetLoadsThroughTheCoopLoader) {
  auto d = MakeDemoShapes(Small());
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string dir =
      (std::filesystem::temp_directory_path() / "provp_builtin_demo_shapes").string();
  std::filesystem::remove_all(dir);
  ASSERT_OK(WriteCoopDataset(*d, dir));
  ASSERT_TRUE(std::filesystem::exists(dir + "/split_zhou_DemoShapes.json"));

  auto loaded = data::LoadCoopDataset(dir, "DemoShapes");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->class_names, d->class_names);
  ASSERT_EQ(loaded->train.size(), d->train.size());
  EXPECT_EQ(loaded->val.size(), d->val.size());
  EXPECT_EQ(loaded->test.size(), d->test.size());
  for (size_t i = 0; i < d->test.size(); ++i) EXPECT_EQ(loaded->test[i].label, d->test[i].label);

  auto decoded = image::DecodeImageFile(loaded->test[7].path);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->pixels, d->test[7].image.rgb);

  data::FewShotOptions fs;
  fs.shots = 16;
  fs.sample_val = false;  // val has 2 per class here, fewer than min(16, 4)
  auto few = data::SampleFewShot(*loaded, fs);
  ASSERT_TRUE(few.ok()) << few.status();
  EXPECT_TRUE(few->short_classes.empty());
  EXPECT_EQ(few->dataset.train.size(), 12u * 16);

  auto base = data::SubsampleClasses(*loaded, data::ClassSubset::kBase);
  auto novel = data::SubsampleClasses(*loaded, data::ClassSubset::kNovel);
  ASSERT_TRUE(base.ok() && novel.ok());
  EXPECT_EQ(base->class_names.size(), 6u);
  EXPECT_EQ(novel->class_names.size(), 6u);
  EXPECT_EQ(base->class_names[0], "circle");
  EXPECT_EQ(novel->class_names[0], "diamond");
}

TEST(DemoDatasetsTest, ColorsAreLabelledByTheObjectColour) {
  auto d = MakeDemoColors(Small());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "DemoColors");
  ASSERT_EQ(d->class_names.size(), SceneColors().size());
  EXPECT_EQ(d->class_names[0], "red");
  EXPECT_EQ(d->train.size(), SceneColors().size() * 16);
  // A "red" image has clearly red pixels somewhere; a "blue" one does not.
  auto has_red = [](const Raster& r) {
    for (int y = 0; y < r.height; ++y) {
      for (int x = 0; x < r.width; ++x) {
        const uint8_t* p = r.at(y, x);
        if (p[0] > 150 && p[1] < 90 && p[2] < 90) return true;
      }
    }
    return false;
  };
  int red_with_red = 0, blue_with_red = 0;
  for (const LabeledRaster& item : d->train) {
    if (item.label == 0) red_with_red += has_red(item.image);
    if (item.label == 2) blue_with_red += has_red(item.image);
  }
  EXPECT_GE(red_with_red, 14);
  EXPECT_LE(blue_with_red, 2);
}

TEST(DemoDatasetsTest, FashionUsesTheHeldOutTestFile) {
  const std::string gz = std::string(kDefaultFashionMnistDir) + "/t10k-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(gz)) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto t10k = LoadFashionMnist(kDefaultFashionMnistDir, /*train=*/false);
  ASSERT_TRUE(t10k.ok()) << t10k.status();
  auto d = MakeDemoFashion(*t10k, Small());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, "DemoFashion");
  EXPECT_EQ(d->class_names.size(), 10u);
  EXPECT_EQ(d->train.size(), 160u);
  EXPECT_EQ(d->test.size(), 30u);
  for (const auto& item : d->test) EXPECT_LT(item.label, 10);
}

}  // namespace
}  // namespace provp::builtin
