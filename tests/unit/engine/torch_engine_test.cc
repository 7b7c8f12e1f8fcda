// The LibTorch engine on the tiny CLIP fixture: normalised features,
// prompt sets that change image features, backbone checks, and a short
// tuning run that checkpoints, stops on request and resumes.
#include "core/engine/torch_engine.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <cmath>

#include "core/util/file_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::engine {
namespace {

using ::provp::testing::StatusIs;

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

Image Solid(uint8_t r, uint8_t g, uint8_t b, int size, int seed) {
  Image img{size, size, {}};
  for (int i = 0; i < size * size; ++i) {
    int n = (i * 7 + seed * 13) % 9;
    img.rgb.insert(img.rgb.end(), {static_cast<uint8_t>(std::min(255, r + n)),
                                   static_cast<uint8_t>(std::min(255, g + n)),
                                   static_cast<uint8_t>(std::min(255, b + n))});
  }
  return img;
}

class TorchEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string model = provp::testing::SharedDir() + "/fixtures/tiny/openai.safetensors";
    std::string vocab = provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
    if (!Exists(model) || !Exists(vocab)) GTEST_SKIP() << "tiny CLIP fixture not found";
    TorchEngineOptions o;
    o.model_path = model;
    o.vocab_path = vocab;
    auto e = CreateTorchEngine(o);
    ASSERT_OK(e);
    engine_ = std::move(*e);
    char tmpl[] = "/tmp/provp_engine_XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override {
    if (!dir_.empty()) (void)system(("rm -rf " + dir_).c_str());
  }

  TuningSpec Spec() {
    TuningSpec spec;
    spec.job_id = "t";
    spec.class_names = {"red", "green", "blue"};
    spec.novel_classes = {2};
    const uint8_t c[3][3] = {{240, 20, 20}, {20, 240, 20}, {20, 20, 240}};
    for (int label = 0; label < 3; ++label) {
      for (int i = 0; i < 5; ++i) {
        images_.push_back(Solid(c[label][0], c[label][1], c[label][2], 40, i));
        spec.items.push_back(
            {std::to_string(images_.size() - 1), label, i < 3 ? Split::kTrain : Split::kTest});
      }
    }
    spec.load_image = [this](const TuningItem& item) -> absl::StatusOr<Image> {
      return images_.at(std::stoul(item.path));
    };
    spec.shots = 2;
    spec.epochs = 3;
    spec.batch_size = 2;
    spec.num_prompts = 4;
    spec.checkpoint_path = dir_ + "/ckpt.safetensors";
    spec.output_path = dir_ + "/out.pset";
    return spec;
  }

  std::unique_ptr<Engine> engine_;
  std::string dir_;
  std::vector<Image> images_;
};

TEST_F(TorchEngineTest, FeaturesAreNormalised) {
  ASSERT_OK(engine_->Warmup());
  EXPECT_EQ(engine_->info().embed_dim, 64);
  EXPECT_EQ(engine_->info().image_resolution, 32);
  EXPECT_FALSE(engine_->info().backbone.empty());
  Image a = Solid(200, 10, 10, 50, 0), b = Solid(10, 10, 200, 20, 1);
  auto f = engine_->EncodeImages({&a, &b}, "");
  ASSERT_OK(f);
  ASSERT_EQ(f->rows, 2);
  ASSERT_EQ(f->dim, 64);
  for (int r = 0; r < 2; ++r) {
    double n = 0;
    for (int i = 0; i < 64; ++i) n += f->row(r)[i] * f->row(r)[i];
    EXPECT_NEAR(n, 1.0, 1e-4);
  }
  auto t = engine_->ClassTextFeatures({"cat", "dog", "car"}, {"a photo of a {}.", "a {}."});
  ASSERT_OK(t);
  EXPECT_EQ(t->rows, 3);
  auto texts = engine_->EncodeTexts({"a photo of a cat."});
  ASSERT_OK(texts);
  EXPECT_EQ(texts->rows, 1);
  EXPECT_THAT(engine_->EncodeImages({&a}, "missing"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(TorchEngineTest, TuneStopResumeAndServe) {
  TuningSpec spec = Spec();
  spec.epochs = 4;
  // Stop after the second epoch's report; the checkpoint stays.
  std::atomic<bool> stop{false};
  int epochs_seen = 0;
  TuningCallbacks cb;
  cb.stop = &stop;
  cb.on_progress = [&](const TuningProgress& p) {
    if (p.epoch_end && ++epochs_seen == 2) stop = true;
  };
  auto stopped = engine_->RunTuning(spec, cb);
  EXPECT_THAT(stopped, StatusIs(absl::StatusCode::kCancelled));
  ASSERT_TRUE(Exists(spec.checkpoint_path));
  stop = false;
  std::vector<std::string> messages;
  int first_epoch = -1;
  cb.on_progress = [&](const TuningProgress& p) {
    if (first_epoch < 0) first_epoch = p.epoch;
  };
  cb.on_message = [&](const std::string& m) { messages.push_back(m); };
  auto done = engine_->RunTuning(spec, cb);
  ASSERT_OK(done);
  EXPECT_EQ(done->resumed_from_epoch, 2);
  EXPECT_EQ(first_epoch, 3);
  EXPECT_EQ(done->epochs_completed, 4);
  EXPECT_EQ(done->evaluation.num_base_images, 4);
  EXPECT_EQ(done->evaluation.num_novel_images, 2);
  EXPECT_DOUBLE_EQ(done->evaluation.novel_accuracy, 1.0);  // one novel class
  EXPECT_GE(done->evaluation.base_accuracy, 0.0);
  EXPECT_EQ(done->prompt_set.base_class_names, (std::vector<std::string>{"red", "green"}));
  EXPECT_EQ(done->prompt_set.novel_class_names, (std::vector<std::string>{"blue"}));
  // The file loads, and its prompts change the image features.
  auto meta = engine_->InspectPromptSet(spec.output_path);
  ASSERT_OK(meta);
  EXPECT_EQ(meta->num_prompts, 4);
  ASSERT_OK(engine_->LoadPromptSet("p", spec.output_path));
  Image img = Solid(200, 10, 10, 32, 3);
  auto plain = engine_->EncodeImages({&img}, "");
  auto prompted = engine_->EncodeImages({&img}, "p");
  ASSERT_OK(plain);
  ASSERT_OK(prompted);
  double diff = 0;
  for (int i = 0; i < 64; ++i) diff += std::abs(plain->data[i] - prompted->data[i]);
  EXPECT_GT(diff, 1e-6);
  ASSERT_OK(engine_->UnloadPromptSet("p"));
  EXPECT_THAT(engine_->UnloadPromptSet("p"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(TorchEngineTest, BadFilesAreErrorsNotCrashes) {
  ASSERT_OK(util::WriteFileAtomic(dir_ + "/junk.pset", "not a safetensors file"));
  auto junk = engine_->InspectPromptSet(dir_ + "/junk.pset");
  EXPECT_FALSE(junk.ok());
  EXPECT_FALSE(engine_->LoadPromptSet("x", dir_ + "/missing.pset").ok());
  TorchEngineOptions o;
  o.model_path = dir_ + "/junk.pset";
  EXPECT_FALSE(CreateTorchEngine(o).ok());
  TuningSpec spec = Spec();
  spec.shots = 0;
  EXPECT_FALSE(engine_->RunTuning(spec, {}).ok());
}

}  // namespace
}  // namespace provp::engine
