// Base/novel class split (CoCoOp's subsample_classes).
#include "core/data/base_novel.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"

namespace provp::data {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::ElementsAre;

Dataset FiveClasses() {
  Dataset d;
  d.name = "Five";
  d.class_names = {"a", "b", "c", "d", "e"};
  for (int label : {4, 0, 3, 1, 2, 2}) d.train.push_back(Item{"tr" + std::to_string(label), label});
  d.val = {Item{"v3", 3}, Item{"v0", 0}};
  d.test = {Item{"t0", 0}, Item{"t2", 2}, Item{"t3", 3}, Item{"t4", 4}};
  return d;
}

TEST(BaseNovelTest, NumBaseIsCeilHalf) {
  EXPECT_EQ(NumBaseClasses(1), 1);
  EXPECT_EQ(NumBaseClasses(10), 5);
  EXPECT_EQ(NumBaseClasses(37), 19);
  EXPECT_EQ(NumBaseClasses(397), 199);
}

TEST(BaseNovelTest, BaseTakesFirstCeilHalfOfSortedLabels) {
  absl::StatusOr<Dataset> base = SubsampleClasses(FiveClasses(), ClassSubset::kBase);
  ASSERT_THAT(base, IsOk());
  EXPECT_THAT(base->class_names, ElementsAre("a", "b", "c"));
  EXPECT_THAT(base->train,
              ElementsAre(Item{"tr0", 0}, Item{"tr1", 1}, Item{"tr2", 2}, Item{"tr2", 2}));
  EXPECT_THAT(base->val, ElementsAre(Item{"v0", 0}));
  EXPECT_THAT(base->test, ElementsAre(Item{"t0", 0}, Item{"t2", 2}));
}

TEST(BaseNovelTest, NovelIsRelabelledFromZero) {
  absl::StatusOr<Dataset> novel = SubsampleClasses(FiveClasses(), ClassSubset::kNovel);
  ASSERT_THAT(novel, IsOk());
  EXPECT_THAT(novel->class_names, ElementsAre("d", "e"));
  EXPECT_THAT(novel->train, ElementsAre(Item{"tr4", 1}, Item{"tr3", 0}));
  EXPECT_THAT(novel->val, ElementsAre(Item{"v3", 0}));
  EXPECT_THAT(novel->test, ElementsAre(Item{"t3", 0}, Item{"t4", 1}));
}

TEST(BaseNovelTest, LabelsComeFromTrainOnly) {
  Dataset d = FiveClasses();
  // Drop class 4 from train: the reference then splits 4 labels 2/2 and the
  // test images of class 4 fall out of both subsets.
  d.train.erase(d.train.begin());
  absl::StatusOr<Dataset> base = SubsampleClasses(d, ClassSubset::kBase);
  absl::StatusOr<Dataset> novel = SubsampleClasses(d, ClassSubset::kNovel);
  ASSERT_THAT(base, IsOk());
  ASSERT_THAT(novel, IsOk());
  EXPECT_THAT(base->class_names, ElementsAre("a", "b"));
  EXPECT_THAT(novel->class_names, ElementsAre("c", "d"));
  EXPECT_THAT(novel->test, ElementsAre(Item{"t2", 0}, Item{"t3", 1}));
}

TEST(BaseNovelTest, AllIsIdentityAndErrorsAreClear) {
  absl::StatusOr<Dataset> all = SubsampleClasses(FiveClasses(), ClassSubset::kAll);
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(all->train, FiveClasses().train);
  Dataset empty = FiveClasses();
  empty.train.clear();
  EXPECT_THAT(SubsampleClasses(empty, ClassSubset::kBase),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Dataset one;
  one.class_names = {"a"};
  one.train = {Item{"x", 0}};
  EXPECT_THAT(SubsampleClasses(one, ClassSubset::kNovel),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BaseNovelTest, ParseSubset) {
  EXPECT_EQ(*ParseClassSubset("base"), ClassSubset::kBase);
  EXPECT_EQ(*ParseClassSubset("new"), ClassSubset::kNovel);
  EXPECT_EQ(*ParseClassSubset("novel"), ClassSubset::kNovel);
  EXPECT_EQ(*ParseClassSubset("all"), ClassSubset::kAll);
  EXPECT_THAT(ParseClassSubset("Base"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::data
