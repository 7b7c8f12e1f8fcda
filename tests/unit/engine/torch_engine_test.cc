// The LibTorch engine on the tiny CLIP fixture: normalised features,
// prompt sets that change image features, backbone checks, a short tuning
// run that checkpoints, stops on request and resumes, mixed-prompt-set
// batches against single-set forwards, and the prompt-set memory budget.
#include "core/engine/torch_engine.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <cmath>

#include "core/clip/checkpoint_loader.h"
#include "core/data/few_shot.h"
#include "core/text/tokenizer.h"
#include "core/train/hyperparameters.h"
#include "core/train/prompt_set.h"
#include "core/train/train_config.h"
#include "core/train/tuning_run.h"
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
    std::string model = ::provp::testing::SharedDir() + "/fixtures/tiny/openai.safetensors";
    std::string vocab = ::provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
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

  // Writes a random prompt set for the tiny fixture (vision width 128, 2 layers).
  std::string WritePromptSet(const std::string& name, int64_t m, int64_t depth, double alpha,
                             uint64_t seed) {
    train::PromptSet set;
    torch::manual_seed(seed);
    set.prompts = torch::rand({depth, m, 128}) * 0.4 - 0.2;
    set.info.model.num_prompts = m;
    set.info.model.depth = depth;
    set.info.model.alpha = alpha;
    set.info.class_names = {"a", "b"};
    set.info.templates = {"a photo of a {}."};
    set.info.backbone_fingerprint = engine_->info().backbone;
    set.info.vision_width = 128;
    set.info.vision_layers = 2;
    const std::string path = dir_ + "/" + name + ".pset";
    EXPECT_OK(train::SavePromptSet(path, set));
    return path;
  }

  std::unique_ptr<Engine> engine_;
  std::string dir_;
  std::vector<Image> images_;
};

// Mixed batches: several sets of two shapes, different alphas, and zero-shot
// images in one call; every row equals the image's single-set forward.
TEST_F(TorchEngineTest, MixedPromptSetBatchEqualsSingleSetForwards) {
  struct SetSpec {
    const char* id;
    int64_t m, depth;
    double alpha;
  };
  const SetSpec specs[] = {{"s1", 4, 2, 0.01},
                           {"s2", 4, 2, 0.01},
                           {"s3", 4, 2, 0.3},
                           {"s4", 6, 2, 0.01},
                           {"s5", 6, 1, 0.0}};
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(engine_->LoadPromptSet(
        specs[i].id, WritePromptSet(specs[i].id, specs[i].m, specs[i].depth, specs[i].alpha, i)));
  }
  std::vector<Image> imgs;
  std::vector<std::string> sets;
  const char* order[] = {"s1", "", "s2", "s3", "s4", "s1", "", "s5", "s2", "s4", "s3", "s5"};
  for (int i = 0; i < 12; ++i) {
    imgs.push_back(Solid(static_cast<uint8_t>(20 * i), 100, static_cast<uint8_t>(250 - 20 * i),
                         30 + 3 * i, i));
    sets.push_back(order[i]);
  }
  std::vector<const Image*> ptrs;
  for (const Image& im : imgs) ptrs.push_back(&im);
  auto mixed = engine_->EncodeImagesMixed(ptrs, sets);
  ASSERT_OK(mixed);
  ASSERT_EQ(mixed->rows, 12);
  for (int i = 0; i < 12; ++i) {
    auto single = engine_->EncodeImages({&imgs[i]}, sets[i]);
    ASSERT_OK(single);
    double worst = 0;
    for (int64_t d = 0; d < mixed->dim; ++d) {
      worst = std::max(worst, static_cast<double>(std::abs(mixed->row(i)[d] - single->row(0)[d])));
    }
    EXPECT_LT(worst, 1e-5) << "image " << i << " with set '" << sets[i] << "'";
  }
  // Prompts matter: s1 and s2 give different features for the same image.
  auto a = engine_->EncodeImagesMixed({&imgs[0], &imgs[0]}, {"s1", "s2"});
  ASSERT_OK(a);
  double diff = 0;
  for (int64_t d = 0; d < a->dim; ++d) diff += std::abs(a->row(0)[d] - a->row(1)[d]);
  EXPECT_GT(diff, 1e-4);
  EXPECT_THAT(engine_->EncodeImagesMixed({&imgs[0]}, {"nope"}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(engine_->EncodeImagesMixed({&imgs[0]}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Issue 11: PrepareImage moves the resize off the model thread; a prepared
// image encodes exactly like the decoded one (same 8-bit crop, same
// normalisation), alone and mixed with unprepared images, and a prepared
// image of the wrong size is refused rather than misread.
TEST_F(TorchEngineTest, PreparedImagesEncodeLikeDecodedOnes) {
  std::vector<Image> raw, prepared;
  for (int i = 0; i < 4; ++i) {
    raw.push_back(Solid(static_cast<uint8_t>(40 * i), 90, 200, 20 + 17 * i, i));
    auto p = engine_->PrepareImage(raw.back());
    ASSERT_OK(p);
    EXPECT_TRUE(p->eval_crop);
    EXPECT_EQ(p->height, engine_->info().image_resolution);
    EXPECT_EQ(p->width, engine_->info().image_resolution);
    // Preparing twice is a no-op.
    auto again = engine_->PrepareImage(*p);
    ASSERT_OK(again);
    EXPECT_EQ(again->rgb, p->rgb);
    prepared.push_back(*std::move(p));
  }
  auto from_raw = engine_->EncodeImages({&raw[0], &raw[1], &raw[2], &raw[3]}, "");
  auto from_prepared =
      engine_->EncodeImages({&prepared[0], &raw[1], &prepared[2], &prepared[3]}, "");
  ASSERT_OK(from_raw);
  ASSERT_OK(from_prepared);
  EXPECT_EQ(from_raw->data, from_prepared->data);
  Image wrong = prepared[0];
  wrong.height = wrong.width = 8;
  EXPECT_THAT(engine_->EncodeImages({&wrong}, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  Image empty;
  EXPECT_THAT(engine_->PrepareImage(empty), StatusIs(absl::StatusCode::kInvalidArgument));
}

// A budget of two sets: loading a third evicts the least recently used
// one, which is read back from its file on next use with the same result.
TEST_F(TorchEngineTest, PromptSetBudgetEvictsLeastRecentlyUsed) {
  TorchEngineOptions o;
  o.model_path = ::provp::testing::SharedDir() + "/fixtures/tiny/openai.safetensors";
  o.vocab_path = ::provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
  const int64_t set_bytes = 2 * 4 * 128 * 4;  // depth 2, m 4, width 128, fp32
  o.prompt_set_budget_bytes = 2 * set_bytes;
  auto made = CreateTorchEngine(o);
  ASSERT_OK(made);
  std::unique_ptr<Engine> engine = std::move(*made);
  engine_.swap(engine);  // WritePromptSet reads the fingerprint from engine_
  Image img = Solid(200, 40, 10, 32, 2);
  ASSERT_OK(engine_->LoadPromptSet("a", WritePromptSet("a", 4, 2, 0.01, 1)));
  ASSERT_OK(engine_->LoadPromptSet("b", WritePromptSet("b", 4, 2, 0.01, 2)));
  auto before = engine_->EncodeImages({&img}, "a");  // a is now the most recent
  ASSERT_OK(before);
  ASSERT_OK(engine_->LoadPromptSet("c", WritePromptSet("c", 4, 2, 0.01, 3)));  // evicts b
  PromptSetCacheStats s = engine_->PromptSetCache();
  EXPECT_EQ(s.loads, 3);
  EXPECT_EQ(s.evictions, 1);
  EXPECT_EQ(s.resident_sets, 2);
  EXPECT_EQ(s.registered_sets, 3);
  EXPECT_EQ(s.resident_bytes, 2 * set_bytes);
  EXPECT_EQ(s.budget_bytes, 2 * set_bytes);
  // b still serves: read back (evicting a, now the least recent).
  ASSERT_OK(engine_->EncodeImages({&img}, "b"));
  s = engine_->PromptSetCache();
  EXPECT_EQ(s.loads, 4);
  EXPECT_EQ(s.evictions, 2);
  EXPECT_LE(s.resident_bytes, 2 * set_bytes);
  auto after = engine_->EncodeImages({&img}, "a");
  ASSERT_OK(after);
  for (int64_t d = 0; d < after->dim; ++d) EXPECT_FLOAT_EQ(after->data[d], before->data[d]);
  ASSERT_OK(engine_->UnloadPromptSet("a"));
  EXPECT_THAT(engine_->EncodeImages({&img}, "a"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(engine_->PromptSetCache().registered_sets, 2);
}

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

// A server job (the engine) and provp-train (train::RunTuning on the same
// data::Dataset) with hand-picked, non-trailing novel classes draw the
// same shots, the protocol's (sampled on all classes, then cut), and write
// the same prompts.
TEST_F(TorchEngineTest, HandPickedNovelClassesDrawLikeTheProtocol) {
  const char* names[] = {"red", "green", "blue", "yellow"};
  const uint8_t c[4][3] = {{240, 20, 20}, {20, 240, 20}, {20, 20, 240}, {240, 240, 20}};
  TuningSpec spec;
  spec.job_id = "same";
  spec.class_names.assign(std::begin(names), std::end(names));
  spec.novel_classes = {1};  // green: not the trailing half
  data::Dataset all;
  all.name = "same";
  all.class_names = spec.class_names;
  const std::pair<Split, int> kSplits[] = {{Split::kTrain, 6}, {Split::kVal, 3}, {Split::kTest, 2}};
  for (int label = 0; label < 4; ++label) {
    for (const auto& [split, count] : kSplits) {
      for (int i = 0; i < count; ++i) {
        images_.push_back(Solid(c[label][0], c[label][1], c[label][2], 40, i + 10 * label));
        const std::string path = std::to_string(images_.size() - 1);
        spec.items.push_back({path, label, split});
        const data::Split ds = split == Split::kTrain ? data::Split::kTrain
                               : split == Split::kVal ? data::Split::kVal
                                                      : data::Split::kTest;
        all.mutable_items(ds).push_back({path, label});
      }
    }
  }
  spec.load_image = [this](const TuningItem& item) -> absl::StatusOr<Image> {
    return images_.at(std::stoul(item.path));
  };
  spec.shots = 3;
  spec.seed = 4;
  spec.epochs = 2;
  spec.batch_size = 4;
  spec.num_prompts = 4;
  spec.selection = "best_val";
  spec.checkpoint_path = dir_ + "/same.ckpt";
  spec.output_path = dir_ + "/same.pset";
  std::vector<TuningProgress> epochs;
  TuningCallbacks cb;
  cb.on_progress = [&](const TuningProgress& p) {
    if (p.epoch_end) epochs.push_back(p);
  };
  auto job = engine_->RunTuning(spec, cb);
  ASSERT_OK(job);

  // The protocol's draw: all classes, train then val from one stream.
  data::FewShotOptions fso;
  fso.shots = 3;
  fso.seed = 4;
  auto drawn = data::SampleFewShot(all, fso);
  ASSERT_OK(drawn);
  std::vector<std::string> expected;
  for (const auto& it : drawn->dataset.train) expected.push_back(it.path);
  EXPECT_EQ(job->train_image_paths, expected);
  // Drawing on the base classes alone (what the engine did before) picks
  // other images for this seed, so the check above can fail.
  data::Dataset base_only = all;
  base_only.train.clear();
  for (const auto& it : all.train) {
    if (it.label != 1) base_only.train.push_back(it);
  }
  auto base_drawn = data::SampleFewShot(base_only, fso);
  ASSERT_OK(base_drawn);
  std::vector<std::string> expected_base, base_only_paths;
  for (const auto& it : drawn->dataset.train) {
    if (it.label != 1) expected_base.push_back(it.path);
  }
  for (const auto& it : base_drawn->dataset.train) base_only_paths.push_back(it.path);
  EXPECT_NE(base_only_paths, expected_base);

  // Validation each epoch (min(3, 4) = 3 val images per base class), 1-based
  // epochs, and the resolved values the job ran with.
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0].epoch, 1);
  EXPECT_GE(epochs[1].validation_accuracy, 0.0);
  ASSERT_EQ(job->history.size(), 2u);
  EXPECT_EQ(job->history[1].epoch, 2);
  EXPECT_DOUBLE_EQ(job->history[1].validation_accuracy, epochs[1].validation_accuracy);
  EXPECT_GE(job->selected_epoch, 1);
  EXPECT_EQ(job->hyperparameters.preset, "base_to_novel");
  EXPECT_EQ(job->hyperparameters.selection, "best_val");
  EXPECT_EQ(job->hyperparameters.shots, 3);
  EXPECT_EQ(job->hyperparameters.epochs, 2);
  EXPECT_DOUBLE_EQ(job->hyperparameters.weight_decay, 1e-3);
  EXPECT_EQ(job->prompt_set.base_class_names, (std::vector<std::string>{"red", "blue", "yellow"}));
  EXPECT_EQ(job->prompt_set.novel_class_names, (std::vector<std::string>{"green"}));

  // provp-train's path: the library on the same dataset and request.
  const std::string model = ::provp::testing::SharedDir() + "/fixtures/tiny/openai.safetensors";
  auto ckpt = clip::LoadCheckpoint(model);
  ASSERT_OK(ckpt);
  auto clip_model = clip::BuildClipModel(*ckpt, {});
  ASSERT_OK(clip_model);
  auto tok = text::Tokenizer::FromPath(::provp::testing::SharedDir() +
                                       "/clip/bpe_simple_vocab_16e6.txt.gz");
  ASSERT_OK(tok);
  train::HyperparameterRequest req;
  req.shots = 3;
  req.seed = 4;
  req.has_novel_classes = true;
  req.epochs = 2;
  req.batch_size = 4;
  req.num_prompts = 4;
  req.selection = "best_val";
  auto resolved = train::ResolveHyperparameters(req);
  ASSERT_OK(resolved);
  auto config = train::ConfigFromResolved(*resolved);
  ASSERT_OK(config);
  train::TuningRunSpec run;
  run.dataset = all;
  run.novel = train::NovelClasses::kExplicit;
  run.novel_labels = {1};
  run.config = *config;
  run.load_image = [this](const data::Item& item, data::Split) -> absl::StatusOr<torch::Tensor> {
    const Image& img = images_.at(std::stoul(item.path));
    return torch::from_blob(const_cast<uint8_t*>(img.rgb.data()), {img.height, img.width, 3},
                            torch::kUInt8)
        .clone();
  };
  run.output_path = dir_ + "/same_cli.pset";
  train::TuningBackbone backbone{*clip_model, tok->get(), ckpt->fingerprint};
  auto offline = train::RunTuning(backbone, run);
  ASSERT_OK(offline);
  auto a = train::ReadPromptSet(spec.output_path);
  auto b = train::ReadPromptSet(run.output_path);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_TRUE(torch::equal(a->prompts, b->prompts));
  EXPECT_DOUBLE_EQ(job->evaluation.base_accuracy, offline->base.tuned.top1);
  EXPECT_DOUBLE_EQ(job->evaluation.novel_accuracy, offline->novel->tuned.top1);
  EXPECT_DOUBLE_EQ(job->evaluation.zero_shot_novel_accuracy, offline->novel->zero_shot.top1);
  EXPECT_EQ(job->selected_epoch, offline->training.selected_epoch);
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
