// End-to-end test of provp-train: writes a small CoOp-layout dataset of
// generated coloured shapes (PNG via the image_io encoder) and a
// split_zhou_Test.json to a scratch folder, runs the real executable with
// the tiny fixture CLIP for two epochs, and checks the printed table, the
// result JSON and the prompt-set files. Also checks that bad input ends
// with exit code 1 and a message naming the problem.
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/zero_shot.h"
#include "core/data/accuracy.h"
#include "core/image/image_io.h"
#include "core/image/preprocess.h"
#include "core/text/tokenizer.h"
#include "core/train/prompt_set.h"
#include "core/util/file_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp {
namespace {

namespace fs = std::filesystem;
using ::provp::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Shape {
  const char* name;
  uint8_t r, g, b;
  int kind;  // 0 circle, 1 square, 2 triangle, 3 vertical bar
};
constexpr Shape kShapes[] = {{"red_circle", 220, 30, 30, 0},
                             {"green_square", 30, 200, 40, 1},
                             {"blue_triangle", 40, 60, 220, 2},
                             {"yellow_bar", 230, 220, 30, 3}};

// A 48x40 image: noisy grey background, the shape at a jittered position.
image::RgbImage DrawShape(const Shape& shape, uint32_t seed) {
  image::RgbImage img;
  img.width = 48;
  img.height = 40;
  img.pixels.resize(static_cast<size_t>(img.width * img.height * 3));
  uint32_t state = seed * 2654435761u + 12345u;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 24;
  };
  const int cx = 20 + static_cast<int>(next() % 9);
  const int cy = 16 + static_cast<int>(next() % 9);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const int dx = x - cx;
      const int dy = y - cy;
      bool inside = false;
      switch (shape.kind) {
        case 0:
          inside = dx * dx + dy * dy <= 100;
          break;
        case 1:
          inside = std::abs(dx) <= 9 && std::abs(dy) <= 9;
          break;
        case 2:
          inside = dy >= -9 && dy <= 9 && std::abs(dx) <= (dy + 9) / 2;
          break;
        default:
          inside = std::abs(dx) <= 3 && std::abs(dy) <= 12;
          break;
      }
      uint8_t* p = &img.pixels[static_cast<size_t>((y * img.width + x) * 3)];
      const int noise = static_cast<int>(next() % 21) - 10;
      if (inside) {
        p[0] = shape.r;
        p[1] = shape.g;
        p[2] = shape.b;
      } else {
        p[0] = p[1] = p[2] = static_cast<uint8_t>(120 + noise);
      }
    }
  }
  return img;
}

struct RunOutput {
  int exit_code = -1;
  std::string text;
};

RunOutput RunTool(const std::string& args) {
  RunOutput out;
  const std::string command = absl::StrCat(PROVP_TRAIN_BINARY, " ", args, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.text.append(buffer, n);
  const int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class ProvpTrainE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::SharedDir() + "/fixtures/tiny/openai.safetensors";
    vocab_ = testing::SharedDir() + "/clip";
    if (!fs::exists(model_)) GTEST_SKIP() << "tiny fixture model not found at " << model_;
    std::string pattern = ::testing::TempDir() + "provp_train_e2e_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    WriteDataset();
  }
  void TearDown() override {
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }

  // 4 classes x (6 train, 2 val, 3 test) images in the CoOp layout.
  void WriteDataset() {
    nlohmann::json split = {{"train", nlohmann::json::array()},
                            {"val", nlohmann::json::array()},
                            {"test", nlohmann::json::array()}};
    const std::pair<const char*, int> kSplits[] = {{"train", 6}, {"val", 2}, {"test", 3}};
    uint32_t seed = 1;
    for (int label = 0; label < 4; ++label) {
      const Shape& shape = kShapes[label];
      for (const auto& [name, count] : kSplits) {
        for (int i = 0; i < count; ++i) {
          const std::string rel = absl::StrCat("images/", shape.name, "/", name, i, ".png");
          absl::StatusOr<std::string> png = image::EncodePng(DrawShape(shape, seed++));
          ASSERT_THAT(png, IsOk());
          fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
          ASSERT_THAT(util::WriteFileAtomic(root_ + "/" + rel, *png), IsOk());
          split[name].push_back({rel, label, shape.name});
        }
      }
    }
    ASSERT_THAT(util::WriteFileAtomic(root_ + "/split_zhou_Test.json", split.dump()), IsOk());
  }

  std::string CommonArgs() const {
    return absl::StrCat("--model ", model_, " --vocab ", vocab_, " --dataset-root ", root_,
                        " --dataset Test");
  }

  std::string model_;
  std::string vocab_;
  std::string root_;
};

TEST_F(ProvpTrainE2eTest, BaseToNovelTwoSeeds) {
  const std::string out = root_ + "/out";
  RunOutput run = RunTool(absl::StrCat(CommonArgs(),
                                       " --setting base2novel --shots 4 --seeds 1,2 --epochs 2"
                                       " --num-prompts 4 --out ",
                                       out));
  ASSERT_EQ(run.exit_code, 0) << run.text;
  EXPECT_THAT(run.text, HasSubstr("seed 1 epoch 1/2"));
  EXPECT_THAT(run.text, HasSubstr("seed 2 epoch 2/2"));
  EXPECT_THAT(run.text, ::testing::ContainsRegex("seed +base +novel +HM"));
  EXPECT_THAT(run.text, ::testing::ContainsRegex("\nmean +[0-9.]+ +[0-9.]+ +[0-9.]+\n"));

  absl::StatusOr<std::string> text = util::ReadFile(out + "/result.json");
  ASSERT_THAT(text, IsOk());
  const nlohmann::json result = nlohmann::json::parse(*text);
  EXPECT_EQ(result["setting"], "base2novel");
  EXPECT_EQ(result["dataset"], "Test");
  ASSERT_EQ(result["runs"].size(), 2u);
  std::vector<double> base, novel;
  for (const nlohmann::json& r : result["runs"]) {
    // 4 shots x 2 base classes; val keeps min(4, 4) but only 2 exist per class.
    EXPECT_EQ(r["train_images"], 8);
    EXPECT_EQ(r["val_images"], 4);
    EXPECT_THAT(r["base_classes"].get<std::vector<std::string>>(),
                ElementsAre("red_circle", "green_square"));
    EXPECT_THAT(r["novel_classes"].get<std::vector<std::string>>(),
                ElementsAre("blue_triangle", "yellow_bar"));
    EXPECT_EQ(r["training"]["epochs_completed"], 2);
    EXPECT_EQ(r["config"]["num_prompts"], 4);
    EXPECT_EQ(r["evaluation"]["base"]["num_images"], 6);
    EXPECT_EQ(r["evaluation"]["novel"]["num_images"], 6);
    const double b = r["base_accuracy"].get<double>();
    const double n = r["novel_accuracy"].get<double>();
    EXPECT_GE(b, 0.0);
    EXPECT_LE(b, 100.0);
    EXPECT_NEAR(b, 100.0 * r["evaluation"]["base"]["top1"].get<double>(), 1e-9);
    EXPECT_NEAR(r["hm"].get<double>(), data::HarmonicMean(b, n), 1e-9);
    base.push_back(b);
    novel.push_back(n);

    absl::StatusOr<train::PromptSet> set = train::ReadPromptSet(r["prompt_set"]);
    ASSERT_THAT(set, IsOk());
    ASSERT_TRUE(set->prompts.defined());
    // Tiny model: 2 vision layers, width 128; 4 prompts per layer.
    EXPECT_EQ(set->prompts.sizes().vec(), (std::vector<int64_t>{2, 4, 128}));
    EXPECT_THAT(set->info.class_names, ElementsAre("red_circle", "green_square"));
    EXPECT_THAT(set->info.templates, ElementsAre("a photo of a {}."));

    // The classification API uses the written prompt set: novel class names,
    // a novel-class test image, prompted vs zero-shot scores.
    absl::StatusOr<clip::LoadedCheckpoint> ckpt = clip::LoadCheckpoint(model_);
    ASSERT_THAT(ckpt, IsOk());
    absl::StatusOr<train::PromptSet> loaded =
        train::LoadPromptSet(r["prompt_set"], ckpt->config, ckpt->fingerprint);
    ASSERT_THAT(loaded, IsOk());
    absl::StatusOr<clip::ClipModel> model = clip::BuildClipModel(*ckpt, {});
    ASSERT_THAT(model, IsOk());
    auto tok = text::Tokenizer::FromPath(vocab_);
    ASSERT_THAT(tok, IsOk());
    clip::ZeroShotClassifier classifier(*model,
                                        std::shared_ptr<const text::Tokenizer>(std::move(*tok)));
    absl::StatusOr<image::RgbImage> img =
        image::DecodeImageFile(root_ + "/images/blue_triangle/test0.png");
    ASSERT_THAT(img, IsOk());
    torch::Tensor hwc =
        torch::from_blob(img->pixels.data(), {img->height, img->width, 3}, torch::kUInt8);
    absl::StatusOr<torch::Tensor> pre =
        image::PreprocessForEval(hwc, ckpt->config.image_resolution);
    ASSERT_THAT(pre, IsOk());
    clip::VisualPrompts prompts;
    prompts.prompts = loaded->prompts;
    prompts.alpha = loaded->info.model.alpha;
    const std::vector<std::string> novel_names = {"blue_triangle", "yellow_bar"};
    auto prompted =
        classifier.Classify(pre->unsqueeze(0), novel_names, loaded->info.templates, 2, &prompts);
    auto zero_shot = classifier.Classify(pre->unsqueeze(0), novel_names, loaded->info.templates, 2);
    ASSERT_THAT(prompted, IsOk());
    ASSERT_THAT(zero_shot, IsOk());
    ASSERT_EQ((*prompted)[0].size(), 2u);
    EXPECT_NEAR((*prompted)[0][0].probability + (*prompted)[0][1].probability, 1.0, 1e-5);
    // The prompts are in the forward: the scores differ from zero-shot's.
    EXPECT_NE((*prompted)[0][0].logit, (*zero_shot)[0][0].logit);
  }
  EXPECT_TRUE(fs::exists(out + "/prompts_seed1.safetensors"));
  EXPECT_TRUE(fs::exists(out + "/prompts_seed2.safetensors"));
  const data::MeanStd b = data::ComputeMeanStd(base);
  const data::MeanStd n = data::ComputeMeanStd(novel);
  EXPECT_NEAR(result["summary"]["base"]["mean"].get<double>(), b.mean, 1e-9);
  EXPECT_NEAR(result["summary"]["novel"]["std"].get<double>(), n.std, 1e-9);
  EXPECT_NEAR(result["summary"]["hm"].get<double>(), data::HarmonicMean(b.mean, n.mean), 1e-9);
}

TEST_F(ProvpTrainE2eTest, AllClassesOneSeed) {
  const std::string out = root_ + "/out_all";
  RunOutput run = RunTool(absl::StrCat(CommonArgs(),
                                       " --setting all --shots 2 --seeds 3 --epochs 1"
                                       " --num-prompts 2 --ref-lambda 0 --quiet --out ",
                                       out));
  ASSERT_EQ(run.exit_code, 0) << run.text;
  EXPECT_THAT(run.text, ::testing::Not(HasSubstr("epoch 1/1")));  // --quiet
  EXPECT_THAT(run.text, ::testing::ContainsRegex("seed +accuracy"));
  absl::StatusOr<std::string> text = util::ReadFile(out + "/result.json");
  ASSERT_THAT(text, IsOk());
  const nlohmann::json result = nlohmann::json::parse(*text);
  ASSERT_EQ(result["runs"].size(), 1u);
  EXPECT_EQ(result["runs"][0]["train_images"], 8);  // 2 shots x 4 classes
  EXPECT_EQ(result["runs"][0]["config"]["ref_lambda"], 0.0);
  EXPECT_EQ(result["runs"][0]["evaluation"]["test"]["num_images"], 12);
  EXPECT_TRUE(fs::exists(out + "/prompts_seed3.safetensors"));
}

TEST_F(ProvpTrainE2eTest, BadInputFailsWithAClearMessage) {
  RunOutput missing =
      RunTool(absl::StrCat("--model ", model_, " --vocab ", vocab_, " --dataset-root ", root_,
                           " --dataset Nope --out ", root_, "/o1"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.text, HasSubstr("split_zhou_Nope.json"));

  RunOutput strict = RunTool(
      absl::StrCat(CommonArgs(), " --shots 10 --strict-shots --epochs 1 --out ", root_, "/o2"));
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_THAT(strict.text, HasSubstr("fewer images than shots"));

  // Caps come from hyperparameters.h and name the flag.
  RunOutput too_many =
      RunTool(absl::StrCat(CommonArgs(), " --shots 3 --epochs 5000 --out ", root_, "/o3"));
  EXPECT_EQ(too_many.exit_code, 1);
  EXPECT_THAT(too_many.text, HasSubstr("--epochs: epochs must be in [0, 1000]"));
}

}  // namespace
}  // namespace provp
