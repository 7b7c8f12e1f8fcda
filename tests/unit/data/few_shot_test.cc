// Few-shot sampling against CoOp's Python code, short-class reporting, and
// explicit few-shot lists.
#include "core/data/few_shot.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"
#include "tests/unit/data/temp_dir.h"

namespace provp::data {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// The synthetic dataset of the Python script below: 5 classes whose first
// appearance order in train is 3, 0, 4, 1, 2, with 30/10/3/16/25 images
// (class 3/0/4/1/2), interleaved round-robin; val lists classes 1, 0, 2, 3, 4
// with 6 images each except class 4 (2).
Dataset MakeSynthetic() {
  Dataset d;
  d.name = "Synthetic";
  d.class_names = {"c0", "c1", "c2", "c3", "c4"};
  const std::vector<int> order = {3, 0, 4, 1, 2};
  std::map<int, int> sizes = {{3, 30}, {0, 10}, {4, 3}, {1, 16}, {2, 25}};
  std::map<int, int> counts;
  bool more = true;
  while (more) {
    more = false;
    for (int c : order) {
      if (counts[c] < sizes[c]) {
        d.train.push_back(Item{absl::StrFormat("c%d/img%03d.jpg", c, counts[c]), c});
        ++counts[c];
        more = true;
      }
    }
  }
  for (int c : {1, 0, 2, 3, 4}) {
    for (int j = 0; j < (c == 4 ? 2 : 6); ++j) {
      d.val.push_back(Item{absl::StrFormat("c%d/val%d.jpg", c, j), c});
    }
  }
  d.test = {Item{"t0.jpg", 0}, Item{"t1.jpg", 4}};
  return d;
}

std::vector<int> IndicesIn(const std::vector<Item>& all, const std::vector<Item>& picked) {
  std::vector<int> out;
  for (const Item& p : picked) {
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == p) out.push_back(static_cast<int>(i));
    }
  }
  return out;
}

struct CoopCase {
  int64_t seed;
  int shots;
  std::vector<int> train;
  std::vector<int> val;
};

// Expected indices come from CPython 3.11.7 running Dassl's
// generate_fewshot_dataset logic verbatim on the same lists:
//   random.seed(seed)
//   tr = fewshot(train, k); va = fewshot(val, min(k, 4))
// where fewshot groups by label in a defaultdict(list) and calls
// random.sample(items, k) for classes with >= k items (keeping all
// otherwise); printed as [train.index(x) for x in tr] (same for val).
TEST(FewShotTest, ReproducesCoopPythonSampling) {
  const std::vector<CoopCase> kCases = {
      {1,
       16,
       {19, 65, 81, 79, 77, 10, 35, 15, 58, 55, 71, 49, 27, 73, 67, 0,  1,  6,  11, 16, 20,
        24, 28, 32, 36, 40, 2,  7,  12, 50, 29, 41, 59, 3,  33, 21, 17, 8,  13, 47, 25, 53,
        56, 37, 44, 72, 30, 54, 4,  62, 34, 57, 60, 68, 48, 18, 45, 66, 70, 22, 78},
       {3, 4, 0, 5, 11, 8, 6, 10, 14, 16, 15, 17, 23, 19, 20, 22, 24, 25}},
      {2,
       4,
       {81, 5, 10, 46, 11, 20, 36, 32, 2, 7, 12, 29, 41, 3, 56, 72, 26, 54, 70},
       {3, 4, 2, 5, 9, 10, 8, 6, 12, 14, 15, 13, 21, 23, 19, 20, 24, 25}},
      {3, 1, {31, 40, 12, 21, 48}, {4, 9, 17, 22, 24}},
  };
  const Dataset d = MakeSynthetic();
  for (const CoopCase& c : kCases) {
    FewShotOptions options;
    options.seed = c.seed;
    options.shots = c.shots;
    absl::StatusOr<FewShotResult> r = SampleFewShot(d, options);
    ASSERT_THAT(r, IsOk());
    EXPECT_THAT(IndicesIn(d.train, r->dataset.train), ElementsAreArray(c.train))
        << "seed " << c.seed << " shots " << c.shots;
    EXPECT_THAT(IndicesIn(d.val, r->dataset.val), ElementsAreArray(c.val))
        << "seed " << c.seed << " shots " << c.shots;
    EXPECT_EQ(r->dataset.test, d.test);
    EXPECT_EQ(r->dataset.class_names, d.class_names);
  }
}

TEST(FewShotTest, DifferentSeedsGiveDifferentSubsets) {
  const Dataset d = MakeSynthetic();
  FewShotOptions a;
  a.seed = 1;
  FewShotOptions b = a;
  b.seed = 2;
  absl::StatusOr<FewShotResult> ra = SampleFewShot(d, a);
  absl::StatusOr<FewShotResult> rb = SampleFewShot(d, b);
  ASSERT_THAT(ra, IsOk());
  ASSERT_THAT(rb, IsOk());
  EXPECT_NE(ra->dataset.train, rb->dataset.train);
  EXPECT_EQ(ra->dataset.train.size(), rb->dataset.train.size());
}

TEST(FewShotTest, ShortClassesAreReported) {
  FewShotOptions options;
  options.shots = 16;
  absl::StatusOr<FewShotResult> r = SampleFewShot(MakeSynthetic(), options);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->short_classes.size(), 3u);
  EXPECT_EQ(r->short_classes[0].split, Split::kTrain);
  EXPECT_EQ(r->short_classes[0].label, 0);
  EXPECT_EQ(r->short_classes[0].available, 10);
  EXPECT_EQ(r->short_classes[1].label, 4);
  EXPECT_EQ(r->short_classes[1].available, 3);
  EXPECT_EQ(r->short_classes[2].split, Split::kVal);
  EXPECT_EQ(r->short_classes[2].label, 4);
  EXPECT_EQ(r->short_classes[2].requested, 4);
  EXPECT_THAT(DescribeShortClasses(r->short_classes),
              HasSubstr("train: class 'c0' (label 0) has 10 image(s), fewer than 16 shots"));
}

TEST(FewShotTest, FewerImagesThanShotsCanBeAnError) {
  FewShotOptions options;
  options.shots = 16;
  options.error_if_fewer = true;
  EXPECT_THAT(SampleFewShot(MakeSynthetic(), options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("fewer images than shots: train class 'c0' (label 0) has 10")));
  options.shots = 3;  // every class has >= 3 train images
  EXPECT_THAT(SampleFewShot(MakeSynthetic(), options), IsOk());
}

TEST(FewShotTest, ValCanBeLeftAlone) {
  const Dataset d = MakeSynthetic();
  FewShotOptions options;
  options.sample_val = false;
  absl::StatusOr<FewShotResult> r = SampleFewShot(d, options);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->dataset.val, d.val);
}

TEST(FewShotTest, RejectsNonPositiveShots) {
  FewShotOptions options;
  options.shots = 0;
  EXPECT_THAT(SampleFewShot(MakeSynthetic(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shots")));
}

class FewShotListTest : public ::testing::Test {
 protected:
  Dataset Rooted() const {
    Dataset d = MakeSynthetic();
    d.image_root = dir_.path();
    for (Split s : {Split::kTrain, Split::kVal, Split::kTest}) {
      for (Item& item : d.mutable_items(s)) item.path = dir_.Path(item.path);
    }
    return d;
  }
  testing::TempDir dir_;
};

TEST_F(FewShotListTest, KeepsExactlyTheListedImagesInOrder) {
  const std::string list =
      dir_.Write("fewshot.json",
                 R"({"train": ["c2/img004.jpg", ["c0/img001.jpg", 0, "c0"], "./c3/img000.jpg"],
          "val": ["c4/val1.jpg"]})");
  const Dataset d = Rooted();
  absl::StatusOr<Dataset> r = ApplyFewShotList(d, list);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->train,
              ElementsAre(Item{dir_.Path("c2/img004.jpg"), 2}, Item{dir_.Path("c0/img001.jpg"), 0},
                          Item{dir_.Path("c3/img000.jpg"), 3}));
  EXPECT_THAT(r->val, ElementsAre(Item{dir_.Path("c4/val1.jpg"), 4}));
  EXPECT_EQ(r->test, d.test);
}

TEST_F(FewShotListTest, MissingValKeepsVal) {
  const std::string list = dir_.Write("fewshot.json", R"({"train": ["c2/img004.jpg"]})");
  const Dataset d = Rooted();
  absl::StatusOr<Dataset> r = ApplyFewShotList(d, list);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->train.size(), 1u);
  EXPECT_EQ(r->val, d.val);
}

TEST_F(FewShotListTest, ErrorsNameFileAndEntry) {
  const Dataset d = Rooted();
  EXPECT_THAT(
      ApplyFewShotList(d, dir_.Write("a.json", R"({"train": ["c2/img004.jpg", "nope.jpg"]})")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("a.json: \"train\"[1]: nope.jpg is not in the dataset's train")));
  EXPECT_THAT(ApplyFewShotList(d, dir_.Write("b.json", R"({"train": [3]})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("b.json: \"train\"[0]")));
  EXPECT_THAT(ApplyFewShotList(d, dir_.Write("c.json", R"({"train": [)")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("c.json: malformed JSON")));
  EXPECT_THAT(ApplyFewShotList(d, dir_.Write("d.json", R"({"val": []})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing key \"train\"")));
  EXPECT_THAT(ApplyFewShotList(d, dir_.Path("absent.json")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.json")));
}

}  // namespace
}  // namespace provp::data
