// Loaders on small layouts written to a scratch folder: the CoOp split JSON
// (named and generic), ImageNet, FGVCAircraft, class folders, manifests,
// and the errors each must name.
#include "core/data/loaders.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"
#include "tests/unit/data/temp_dir.h"

namespace provp::data {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class LoadersTest : public ::testing::Test {
 protected:
  // A CoOp OxfordPets folder under $DATA = dir_: labels listed out of order
  // in train so the class list must be ordered by label, not appearance.
  void WritePets(const std::string& json) {
    dir_.Write("oxford_pets/split_zhou_OxfordPets.json", json);
    for (const char* f : {"b1.jpg", "a1.jpg", "a2.jpg", "v1.jpg", "t1.jpg", "t2.jpg"}) {
      dir_.Write(std::string("oxford_pets/images/") + f);
    }
  }
  static constexpr const char* kPetsJson = R"({
    "train": [["b1.jpg", 1, "beagle"], ["a1.jpg", 0, "abyssinian"], ["a2.jpg", 0, "abyssinian"]],
    "val":   [["v1.jpg", 1, "beagle"]],
    "test":  [["t1.jpg", 0, "abyssinian"], ["t2.jpg", 1, "beagle"]]})";
  testing::TempDir dir_;
};

TEST_F(LoadersTest, CoopSplitJsonByName) {
  WritePets(kPetsJson);
  absl::StatusOr<Dataset> d = LoadCoopDataset(dir_.path(), "OxfordPets");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->name, "OxfordPets");
  EXPECT_THAT(d->class_names, ElementsAre("abyssinian", "beagle"));
  const std::string images = dir_.Path("oxford_pets/images");
  EXPECT_EQ(d->image_root, images);
  EXPECT_THAT(d->train, ElementsAre(Item{images + "/b1.jpg", 1}, Item{images + "/a1.jpg", 0},
                                    Item{images + "/a2.jpg", 0}));
  EXPECT_THAT(d->val, ElementsAre(Item{images + "/v1.jpg", 1}));
  EXPECT_EQ(d->test.size(), 2u);
}

TEST_F(LoadersTest, CoopRootMayBeTheDatasetFolderItself) {
  WritePets(kPetsJson);
  absl::StatusOr<Dataset> d = LoadCoopDataset(dir_.Path("oxford_pets"), "OxfordPets");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->train.size(), 3u);
}

TEST_F(LoadersTest, MissingSplitFileIsNamed) {
  EXPECT_THAT(LoadCoopDataset(dir_.path(), "EuroSAT"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("eurosat/split_zhou_EuroSAT.json")));
  EXPECT_THAT(LoadCoopDataset(dir_.path(), "MyData"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("missing split file " + dir_.Path("split_zhou_MyData.json"))));
}

TEST_F(LoadersTest, MalformedJsonIsNamed) {
  WritePets(R"({"train": [["b1.jpg", 1, "beagle"],)");
  EXPECT_THAT(
      LoadCoopDataset(dir_.path(), "OxfordPets"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("split_zhou_OxfordPets.json"), HasSubstr("malformed JSON"))));
}

TEST_F(LoadersTest, DeepNestingIsRefusedBeforeParsing) {
  WritePets(std::string(100000, '['));
  EXPECT_THAT(LoadCoopDataset(dir_.path(), "OxfordPets"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nested deeper")));
}

TEST_F(LoadersTest, BadEntriesNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case kCases[] = {
      {R"({"train": [["a1.jpg", 0, "x"]]})", "missing key \"test\""},
      {R"({"train": {}, "test": []})", "\"train\" is not a list"},
      {R"({"train": [["a1.jpg", 0]], "test": []})", "\"train\"[0]: expected [image path, label"},
      {R"({"train": [["a1.jpg", "0", "x"]], "test": []})",
       "\"train\"[0][1]: label is not an integer"},
      {R"({"train": [["a1.jpg", -1, "x"]], "test": []})", "\"train\"[0][1]: label -1 out of range"},
      {R"({"train": [[7, 0, "x"]], "test": []})", "\"train\"[0][0]: image path is not a string"},
      {R"({"train": [], "test": []})", "\"train\" is empty: no classes"},
      {R"({"train": [["a1.jpg", 1, "x"]], "test": []})", "\"train\" has no item with label 0"},
      {R"({"train": [["a1.jpg", 0, "x"], ["a2.jpg", 0, "y"]], "test": []})",
       "\"train\"[1]: label 0 named 'y' but earlier 'x'"},
      {R"({"train": [["a1.jpg", 0, "x"]], "test": [["t1.jpg", 3, "z"]]})",
       "\"test\"[0][1]: label 3 out of range"},
      {R"({"train": [["a1.jpg", 0, "x"]], "test": [["t1.jpg", 0, "z"]]})",
       "\"test\"[0][2]: unknown class 'z'"},
      {R"({"train": [["a1.jpg", 0, "x"], ["a2.jpg", 1, "x"]], "test": []})",
       "duplicate class name 'x' (labels 0 and 1)"},
      {R"({"train": [["a1.jpg", 0, ""]], "test": []})", "class 0 has an empty name"},
  };
  for (const Case& c : kCases) {
    WritePets(c.json);
    EXPECT_THAT(LoadCoopDataset(dir_.path(), "OxfordPets"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("split_zhou_OxfordPets.json"), HasSubstr(c.message))))
        << c.json;
  }
}

TEST_F(LoadersTest, MissingImageIsNamedUnlessChecksAreOff) {
  WritePets(R"({"train": [["a1.jpg", 0, "x"], ["gone.jpg", 0, "x"]],
                "test": [["gone2.jpg", 0, "x"]]})");
  EXPECT_THAT(
      LoadCoopDataset(dir_.path(), "OxfordPets"),
      StatusIs(absl::StatusCode::kNotFound,
               AllOf(HasSubstr("missing image file " + dir_.Path("oxford_pets/images/gone.jpg")),
                     HasSubstr("train[1]"), HasSubstr("2 listed image file(s)"))));
  LoadOptions options;
  options.check_files = false;
  EXPECT_THAT(LoadCoopDataset(dir_.path(), "OxfordPets", options), IsOk());
}

TEST_F(LoadersTest, GenericSplitJsonFindsItsNameAndImageRoot) {
  dir_.Write("mine/split_zhou_Shapes.json",
             R"({"train": [["img/a.png", 0, "red_circle"]], "val": [],
                 "test": [["img/b.png", 0, "red_circle"]]})");
  dir_.Write("mine/img/a.png");
  dir_.Write("mine/img/b.png");
  absl::StatusOr<Dataset> d = LoadCoopDataset(dir_.Path("mine"), "");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->name, "Shapes");
  EXPECT_EQ(d->train[0].path, dir_.Path("mine/img/a.png"));

  dir_.Write("elsewhere/img/a.png");
  dir_.Write("elsewhere/img/b.png");
  LoadOptions options;
  options.image_root = dir_.Path("elsewhere");
  d = LoadCoopDataset(dir_.Path("mine"), "Shapes", options);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->test[0].path, dir_.Path("elsewhere/img/b.png"));

  dir_.Write("mine/split_zhou_Other.json", "{}");
  EXPECT_THAT(LoadCoopDataset(dir_.Path("mine"), ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("need exactly one")));
}

TEST_F(LoadersTest, ImageNetLayout) {
  dir_.Write("imagenet/classnames.txt", "n01 tench\nn02 goldfish\nn03 great white shark\n\n");
  dir_.Write("imagenet/images/train/n02/x2.JPEG");
  dir_.Write("imagenet/images/train/n02/x1.JPEG");
  dir_.Write("imagenet/images/train/n01/y1.JPEG");
  dir_.Write("imagenet/images/train/n03/z1.JPEG");
  dir_.Write("imagenet/images/train/n03/.hidden");
  dir_.Write("imagenet/images/val/n03/v1.JPEG");
  absl::StatusOr<Dataset> d = LoadCoopDataset(dir_.path(), "ImageNet");
  ASSERT_THAT(d, IsOk());
  EXPECT_THAT(d->class_names, ElementsAre("tench", "goldfish", "great white shark"));
  const std::string train = dir_.Path("imagenet/images/train");
  EXPECT_THAT(d->train,
              ElementsAre(Item{train + "/n01/y1.JPEG", 0}, Item{train + "/n02/x1.JPEG", 1},
                          Item{train + "/n02/x2.JPEG", 1}, Item{train + "/n03/z1.JPEG", 2}));
  EXPECT_TRUE(d->val.empty());
  EXPECT_THAT(d->test, ElementsAre(Item{dir_.Path("imagenet/images/val/n03/v1.JPEG"), 2}));

  dir_.Write("imagenet/images/val/n09/v.JPEG");
  EXPECT_THAT(LoadCoopDataset(dir_.path(), "ImageNet"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown class: n09 has no train folder")));
  dir_.Write("imagenet/images/train/n09/v.JPEG");
  EXPECT_THAT(LoadCoopDataset(dir_.path(), "ImageNet"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("n09 is not in " + dir_.Path("imagenet/classnames.txt"))));
}

TEST_F(LoadersTest, FgvcAircraftLayout) {
  dir_.Write("fgvc_aircraft/variants.txt", "707-320\nA300B4\n");
  dir_.Write("fgvc_aircraft/images_variant_train.txt", "0001 A300B4\n0002 707-320\n");
  dir_.Write("fgvc_aircraft/images_variant_val.txt", "0003 A300B4\n");
  dir_.Write("fgvc_aircraft/images_variant_test.txt", "0004 707-320\n");
  for (const char* id : {"0001", "0002", "0003", "0004"}) {
    dir_.Write(std::string("fgvc_aircraft/images/") + id + ".jpg");
  }
  absl::StatusOr<Dataset> d = LoadCoopDataset(dir_.path(), "FGVCAircraft");
  ASSERT_THAT(d, IsOk());
  EXPECT_THAT(d->class_names, ElementsAre("707-320", "A300B4"));
  EXPECT_THAT(d->train, ElementsAre(Item{dir_.Path("fgvc_aircraft/images/0001.jpg"), 1},
                                    Item{dir_.Path("fgvc_aircraft/images/0002.jpg"), 0}));
  EXPECT_EQ(d->val.size(), 1u);
  EXPECT_EQ(d->test.size(), 1u);

  dir_.Write("fgvc_aircraft/images_variant_test.txt", "0004 747-400\n");
  EXPECT_THAT(LoadCoopDataset(dir_.path(), "FGVCAircraft"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("images_variant_test.txt: line 1"),
                             HasSubstr("unknown class '747-400'"))));
}

TEST_F(LoadersTest, ClassFoldersFlatAndSplit) {
  dir_.Write("flat/dog/1.jpg");
  dir_.Write("flat/cat/2.PNG");
  dir_.Write("flat/cat/notes.txt");
  absl::StatusOr<Dataset> d = LoadClassFolders(dir_.Path("flat"), "pets");
  ASSERT_THAT(d, IsOk());
  EXPECT_THAT(d->class_names, ElementsAre("cat", "dog"));
  EXPECT_THAT(d->train, ElementsAre(Item{dir_.Path("flat/cat/2.PNG"), 0},
                                    Item{dir_.Path("flat/dog/1.jpg"), 1}));
  EXPECT_TRUE(d->test.empty());

  dir_.Write("split/train/b/1.jpg");
  dir_.Write("split/train/a/1.jpg");
  dir_.Write("split/test/b/9.jpg");
  d = LoadClassFolders(dir_.Path("split"), "s");
  ASSERT_THAT(d, IsOk());
  EXPECT_THAT(d->class_names, ElementsAre("a", "b"));
  EXPECT_THAT(d->test, ElementsAre(Item{dir_.Path("split/test/b/9.jpg"), 1}));
  EXPECT_TRUE(d->val.empty());

  dir_.Write("split/val/zebra/1.jpg");
  EXPECT_THAT(LoadClassFolders(dir_.Path("split"), "s"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown class 'zebra'")));
  std::filesystem::create_directories(dir_.Path("empty"));
  EXPECT_THAT(LoadClassFolders(dir_.Path("empty"), "e"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty class list")));
  EXPECT_THAT(LoadClassFolders(dir_.Path("nowhere"), "e"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LoadersTest, Manifest) {
  dir_.Write("m/pics/a.jpg");
  dir_.Write("m/pics/b.jpg");
  const std::string path = dir_.Write("m/manifest.json", R"({
    "name": "Mine", "image_root": "pics", "class_names": ["x", "y"],
    "items": [{"path": "a.jpg", "label": 1},
              {"path": "b.jpg", "label": 0, "split": "test"}]})");
  absl::StatusOr<Dataset> d = LoadManifest(path);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->name, "Mine");
  EXPECT_THAT(d->train, ElementsAre(Item{dir_.Path("m/pics/a.jpg"), 1}));
  EXPECT_THAT(d->test, ElementsAre(Item{dir_.Path("m/pics/b.jpg"), 0}));

  struct Case {
    const char* json;
    const char* message;
  };
  const Case kCases[] = {
      {R"([])", "expected an object"},
      {R"({"items": []})", "\"class_names\" missing"},
      {R"({"class_names": [1], "items": []})", "\"class_names\"[0] is not a string"},
      {R"({"class_names": ["x"]})", "\"items\" missing"},
      {R"({"class_names": ["x"], "items": [{"label": 0}]})", "\"items\"[0].path missing"},
      {R"({"class_names": ["x"], "items": [{"path": "a", "label": 1}]})",
       "\"items\"[0].label 1 out of range [0, 1)"},
      {R"({"class_names": ["x"], "items": [{"path": "a", "label": 0, "split": "dev"}]})",
       "\"items\"[0].split must be"},
      {R"({"class_names": [], "items": []})", "empty class list"},
      {R"({"class_names": ["x", "x"], "items": []})", "duplicate class name 'x'"},
  };
  for (const Case& c : kCases) {
    const std::string bad = dir_.Write("m/bad.json", c.json);
    EXPECT_THAT(LoadManifest(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                            AllOf(HasSubstr("bad.json"), HasSubstr(c.message))))
        << c.json;
  }
}

TEST(CoopLayoutsTest, HasTheElevenBenchmarks) {
  EXPECT_EQ(CoopLayouts().size(), 11u);
  for (const CoopLayout& layout : CoopLayouts()) EXPECT_FALSE(layout.folder.empty());
}

}  // namespace
}  // namespace provp::data
