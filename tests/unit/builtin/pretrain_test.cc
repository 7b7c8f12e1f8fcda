// Contrastive pretraining on a tiny CLIP: the loss falls, the run is
// deterministic, the model ends frozen, and bad options are refused.
#include "core/builtin/pretrain.h"

#include <filesystem>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/builtin/prepare.h"
#include "core/text/bpe_trainer.h"
#include "tests/testing/status_matchers.h"

namespace provp::builtin {
namespace {

using ::provp::testing::StatusIs;

class PretrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(
        (std::filesystem::temp_directory_path() / "provp_builtin_pretrain_vocab").string());
    auto vocab = text::BuildBpeVocabulary(VocabularyCorpus(2000, 1), 400);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    ASSERT_OK(vocab->WriteHfVocabulary(*dir_));
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    auto tok = text::Tokenizer::FromPath(*dir_);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::move(*tok);
  }

  clip::ClipConfig Tiny() const {
    clip::ClipConfig c = BuiltinClipConfig(tokenizer_->vocab_size());
    c.embed_dim = c.vision_width = c.text_width = 64;
    c.vision_heads = c.text_heads = 1;
    c.vision_layers = c.text_layers = 1;
    c.context_length = 16;
    return c;
  }

  clip::ClipModel NewModel() {
    auto m = clip::BuildRandomClipModel(Tiny(), clip::ModelOptions{}, 3);
    EXPECT_TRUE(m.ok()) << m.status();
    return *m;
  }

  static std::string* dir_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
};
std::string* PretrainTest::dir_ = nullptr;

TEST_F(PretrainTest, LossFallsAndModelEndsFrozen) {
  // Fashion-MNIST classes are the quickest signal to learn; scenes alone
  // need far more steps than a unit test has.
  auto fashion = LoadFashionMnist(kDefaultFashionMnistDir, /*train=*/true, 3000);
  if (!fashion.ok()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  clip::ClipModel model = NewModel();
  PretrainOptions o;
  o.steps = 100;
  o.batch_size = 32;
  o.warmup_steps = 5;
  o.learning_rate = 2e-3;
  o.fashion_fraction = 0.8;
  o.log_every = 20;
  std::vector<double> losses;
  o.on_progress = [&](int64_t, double loss, double, double) { losses.push_back(loss); };
  auto stats = Pretrain(model, *tokenizer_, *fashion, o);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(losses.size(), 5u);
  // Chance level of a 32-way InfoNCE is log(32) = 3.47.
  EXPECT_GT(losses.front(), 3.0);
  EXPECT_LT(losses.back(), losses.front() - 0.2);
  EXPECT_EQ(stats->steps, 100);
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_FALSE(model->is_training());
}

TEST_F(PretrainTest, SameSeedSameWeights) {
  PretrainOptions o;
  o.steps = 3;
  o.batch_size = 8;
  o.warmup_steps = 1;
  clip::ClipModel a = NewModel();
  clip::ClipModel b = NewModel();
  ASSERT_TRUE(Pretrain(a, *tokenizer_, FashionMnist{}, o).ok());
  ASSERT_TRUE(Pretrain(b, *tokenizer_, FashionMnist{}, o).ok());
  auto pa = a->named_parameters();
  auto pb = b->named_parameters();
  for (const auto& item : pa) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
  // And training changed them.
  clip::ClipModel fresh = NewModel();
  EXPECT_FALSE(torch::equal(fresh->named_parameters()["text_projection"], pa["text_projection"]));
}

TEST_F(PretrainTest, BadOptionsAreRefused) {
  clip::ClipModel model = NewModel();
  PretrainOptions o;
  o.steps = 0;
  EXPECT_THAT(Pretrain(model, *tokenizer_, FashionMnist{}, o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o = PretrainOptions();
  o.batch_size = 1;
  EXPECT_THAT(Pretrain(model, *tokenizer_, FashionMnist{}, o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o = PretrainOptions();
  o.fashion_fraction = 1.5;
  EXPECT_THAT(Pretrain(model, *tokenizer_, FashionMnist{}, o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(PretrainTest, TokenizerLargerThanModelIsRefused) {
  clip::ClipConfig c = Tiny();
  c.vocab_size = 100;
  auto model = clip::BuildRandomClipModel(c, clip::ModelOptions{}, 1);
  ASSERT_TRUE(model.ok());
  EXPECT_THAT(Pretrain(*model, *tokenizer_, FashionMnist{}, PretrainOptions()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RastersToTensorTest, NormalisesWithClipStatistics) {
  Raster r(2, 2);
  std::fill(r.rgb.begin(), r.rgb.end(), 255);
  torch::Tensor t = RastersToTensor({r, r});
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 3, 2, 2}));
  EXPECT_NEAR(t[0][0][0][0].item<double>(), (1.0 - 0.48145466) / 0.26862954, 1e-5);
  EXPECT_NEAR(t[1][2][1][1].item<double>(), (1.0 - 0.40821073) / 0.27577711, 1e-5);
}

}  // namespace
}  // namespace provp::builtin
