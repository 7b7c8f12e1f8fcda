// The CUDA serving path of the LibTorch engine on the tiny CLIP fixture:
// CUDA-graph replays equal eager forwards (zero-shot, one prompt set, a
// mixed batch, batch sizes padded to their bucket), and pinned staging with
// normalisation on the device equals the pageable host path. Skips without
// CUDA (or without the fixture), so CPU CI stays green.
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>

#include <torch/cuda.h>

#include "core/engine/torch_engine.h"
#include "core/train/prompt_set.h"
#include "gtest/gtest.h"
#include "tests/testing/test_paths.h"

namespace provp::engine {
namespace {

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

Image Pattern(int size, int seed) {
  Image img{size, size + seed % 7, {}};
  for (int i = 0; i < img.height * img.width; ++i) {
    img.rgb.insert(img.rgb.end(), {static_cast<uint8_t>((i * 7 + seed * 31) % 256),
                                   static_cast<uint8_t>((i * 3 + seed * 17) % 256),
                                   static_cast<uint8_t>((i * 11 + seed) % 256)});
  }
  return img;
}

double MaxDiff(const FeatureMatrix& a, const FeatureMatrix& b) {
  double worst = 0;
  for (size_t i = 0; i < a.data.size() && i < b.data.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(a.data[i] - b.data[i])));
  }
  return a.data.size() == b.data.size() ? worst : 1e9;
}

class EngineGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    model_ = ::provp::testing::SharedDir() + "/fixtures/tiny/openai.safetensors";
    vocab_ = ::provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
    if (!Exists(model_) || !Exists(vocab_)) GTEST_SKIP() << "tiny CLIP fixture not found";
  }

  std::unique_ptr<Engine> Make(int64_t graph_max_batch, bool pinned) {
    TorchEngineOptions o;
    o.model_path = model_;
    o.vocab_path = vocab_;
    o.device = "cuda";
    o.cuda_graph_max_batch = graph_max_batch;
    o.pinned_staging = pinned;
    auto e = CreateTorchEngine(o);
    EXPECT_TRUE(e.ok()) << e.status();
    if (!e.ok()) return nullptr;
    EXPECT_TRUE((*e)->Warmup().ok());
    return std::move(*e);
  }

  void LoadSets(Engine* engine) {
    for (int i = 0; i < 3; ++i) {
      train::PromptSet set;
      torch::manual_seed(7 + i);
      set.prompts = torch::rand({2, 4, 128}) * 0.4 - 0.2;
      set.info.model.num_prompts = 4;
      set.info.model.depth = 2;
      set.info.model.alpha = 0.01;
      set.info.vision_width = 128;
      set.info.vision_layers = 2;
      const std::string path = "/tmp/provp_engine_gpu_set" + std::to_string(i) + ".pset";
      ASSERT_TRUE(train::SavePromptSet(path, set).ok());
      ASSERT_TRUE(engine->LoadPromptSet("s" + std::to_string(i), path).ok());
    }
  }

  std::string model_, vocab_;
};

TEST_F(EngineGpuTest, GraphReplaysEqualEagerForwards) {
  auto graphs = Make(8, true);
  auto eager = Make(0, true);
  ASSERT_TRUE(graphs && eager);
  LoadSets(graphs.get());
  LoadSets(eager.get());
  std::vector<Image> imgs;
  for (int i = 0; i < 5; ++i) imgs.push_back(Pattern(40 + 5 * i, i));
  std::vector<const Image*> ptrs;
  for (const Image& im : imgs) ptrs.push_back(&im);
  for (const std::string set : {"", "s0"}) {
    for (size_t n : {size_t{1}, size_t{3}, size_t{5}}) {  // 3 and 5 pad to 4 and 8
      std::vector<const Image*> some(ptrs.begin(), ptrs.begin() + n);
      auto a = graphs->EncodeImages(some, set);
      auto b = eager->EncodeImages(some, set);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_LT(MaxDiff(*a, *b), 1e-3) << "set '" << set << "' batch " << n;
    }
  }
  const std::vector<std::string> mixed = {"s0", "", "s1", "s2", "s1"};
  auto a = graphs->EncodeImagesMixed(ptrs, mixed);
  auto b = eager->EncodeImagesMixed(ptrs, mixed);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(MaxDiff(*a, *b), 1e-3);
}

TEST_F(EngineGpuTest, PinnedStagingEqualsPageableCopy) {
  auto pinned = Make(0, true);
  auto pageable = Make(0, false);
  ASSERT_TRUE(pinned && pageable);
  std::vector<Image> imgs;
  for (int i = 0; i < 4; ++i) imgs.push_back(Pattern(33 + 9 * i, i));
  std::vector<const Image*> ptrs;
  for (const Image& im : imgs) ptrs.push_back(&im);
  auto a = pinned->EncodeImages(ptrs, "");
  auto b = pageable->EncodeImages(ptrs, "");
  ASSERT_TRUE(a.ok() && b.ok());
  // The same crops; normalisation on the device vs the host may differ in
  // the last fp32 bit, which bf16 activations can round either way.
  EXPECT_LT(MaxDiff(*a, *b), 2e-2);
}

}  // namespace
}  // namespace provp::engine
