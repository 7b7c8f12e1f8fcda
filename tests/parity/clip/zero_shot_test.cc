// Zero-shot classification end to end through the core API: class names and
// a template through the real tokenizer and text tower must reproduce the
// reference's zero-shot logits on every parity fixture directory, and the
// (template, name) cache must serve repeats without a forward pass.
#include "core/clip/zero_shot.h"

#include <fstream>
#include <string>
#include <vector>

#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/safetensors.h"
#include "core/text/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::clip {
namespace {

using ::provp::testing::StatusIs;

class ZeroShotTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ZeroShotTest, ClassNamesReproduceReferenceLogits) {
  const std::string dir = GetParam();
  std::ifstream cfg_in(dir + "/config.json");
  ASSERT_TRUE(cfg_in.good()) << "missing fixture directory " << dir;
  const nlohmann::json cfg = nlohmann::json::parse(cfg_in);
  std::vector<std::string> names = cfg.at("classnames").get<std::vector<std::string>>();
  // The fixture's class prompts are "a photo of a <name>."
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_EQ(cfg.at("class_prompts")[i].get<std::string>(), "a photo of a " + names[i] + ".");
  }

  auto ckpt = LoadCheckpoint(dir + "/openai.safetensors");
  ASSERT_OK(ckpt);
  auto model = BuildClipModel(*ckpt, {});
  ASSERT_OK(model);
  auto tok =
      text::Tokenizer::FromPath(provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz");
  ASSERT_OK(tok);
  auto ref = ReadSafetensors(dir + "/reference.safetensors");
  ASSERT_OK(ref);
  const torch::Tensor images = ref->tensors.at("images");
  const torch::Tensor expected = ref->tensors.at("logits_zero_shot");

  ZeroShotClassifier classifier(*model, std::shared_ptr<const text::Tokenizer>(std::move(*tok)));
  auto text = classifier.TextFeatures(names, {"a photo of a {}."});
  ASSERT_OK(text);
  auto img = classifier.ImageFeatures(images);
  ASSERT_OK(img);
  const torch::Tensor logits = (*model)->LogitScale() * img->matmul(text->t());
  EXPECT_TRUE(torch::allclose(logits, expected, 1e-4, 1e-4))
      << "max abs diff " << (logits - expected).abs().max().item<float>();

  auto preds = classifier.Classify(images, names, {"a photo of a {}."}, 2);
  ASSERT_OK(preds);
  ASSERT_EQ(preds->size(), static_cast<size_t>(images.size(0)));
  for (int64_t b = 0; b < images.size(0); ++b) {
    const auto& top = (*preds)[b];
    ASSERT_EQ(top.size(), 2u);
    EXPECT_EQ(top[0].class_index, expected[b].argmax().item<int64_t>());
    EXPECT_EQ(top[0].label, names[top[0].class_index]);
    EXPECT_GE(top[0].probability, top[1].probability);
    EXPECT_NEAR(top[0].logit, expected[b][top[0].class_index].item<float>(), 1e-3);
  }
  // Second call: every name served from the cache.
  const auto before = classifier.cache_stats();
  ASSERT_OK(classifier.TextFeatures(names, {"a photo of a {}."}));
  const auto after = classifier.cache_stats();
  EXPECT_EQ(after.hits - before.hits, names.size());
  EXPECT_EQ(after.misses, before.misses);
  EXPECT_EQ(after.entries, names.size());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ZeroShotTest,
                         ::testing::ValuesIn(provp::testing::DirsFromEnv(
                             "PROVP_PARITY_FIXTURES",
                             provp::testing::SharedDir() + "/fixtures/tiny")));

TEST(ZeroShotUnitTest, TemplatesAndErrors) {
  EXPECT_EQ(*FillTemplate("a photo of a {}.", "Apply_Eye_Makeup"),
            "a photo of a Apply Eye Makeup.");
  EXPECT_THAT(FillTemplate("no placeholder", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  auto model = BuildRandomClipModel(TinyConfig(), {}, 3);
  ASSERT_OK(model);
  auto tok = text::Tokenizer::FromPath(provp::testing::SharedDir() + "/clip");
  ASSERT_OK(tok);
  ZeroShotClassifier classifier(*model, std::shared_ptr<const text::Tokenizer>(std::move(*tok)));
  EXPECT_THAT(classifier.TextFeatures({}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(classifier.TextFeatures({"cat", ""}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Two templates: the renormalised mean of the two single-template features.
  auto a = classifier.TextFeatures({"cat", "dog"}, {"a photo of a {}."});
  auto b = classifier.TextFeatures({"cat", "dog"}, {"a drawing of a {}."});
  auto ab = classifier.TextFeatures({"cat", "dog"}, {"a photo of a {}.", "a drawing of a {}."});
  ASSERT_OK(ab);
  torch::Tensor mean = *a + *b;
  mean = mean / mean.norm(2, -1, true);
  EXPECT_TRUE(torch::allclose(*ab, mean, 1e-5, 1e-6));
  EXPECT_NEAR(ab->norm(2, -1)[0].item<float>(), 1.0f, 1e-5);
}

}  // namespace
}  // namespace provp::clip
