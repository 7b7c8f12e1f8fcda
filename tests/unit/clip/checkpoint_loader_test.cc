// Checkpoint loading: layouts, inferred sizes, tokenizer_dir, fingerprints,
// and corrupt or mismatched files (truncated, bit-flipped, random bytes,
// missing/extra/misshapen keys, bad HF config), which must be errors
// naming the problem, never crashes. Mutated copies go to a temp dir.
#include "core/clip/checkpoint_loader.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>

#include <torch/torch.h>

#include "core/clip/clip_model.h"
#include "core/clip/safetensors.h"
#include "core/text/tokenizer.h"
#include "core/util/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::clip {
namespace {

using ::provp::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string Tiny() { return provp::testing::SharedDir() + "/fixtures/tiny"; }

class CheckpointLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "/clip_loader_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    EXPECT_OK(util::WriteFileAtomic(path, bytes));
    return path;
  }
  std::string Fixture(const std::string& name) {
    auto bytes = util::ReadFile(Tiny() + "/" + name);
    EXPECT_OK(bytes);
    return bytes.ok() ? *bytes : std::string();
  }
  std::map<std::string, torch::Tensor> FixtureWeights() {
    auto st = ReadSafetensors(Tiny() + "/openai.safetensors");
    EXPECT_OK(st);
    return st.ok() ? st->tensors : std::map<std::string, torch::Tensor>{};
  }

  std::string dir_;
};

TEST_F(CheckpointLoaderTest, InfersTheTinyConfig) {
  auto ck = LoadCheckpoint(Tiny() + "/openai.safetensors");
  ASSERT_OK(ck);
  EXPECT_EQ(ck->layout, CheckpointLayout::kOpenAISafetensors);
  const ClipConfig& c = ck->config;
  EXPECT_EQ(c.embed_dim, 64);
  EXPECT_EQ(c.image_resolution, 32);
  EXPECT_EQ(c.vision_patch_size, 8);
  EXPECT_EQ(c.vision_width, 128);
  EXPECT_EQ(c.vision_layers, 2);
  EXPECT_EQ(c.vision_heads, 2);
  EXPECT_EQ(c.text_width, 64);
  EXPECT_EQ(c.text_layers, 2);
  EXPECT_EQ(c.text_heads, 1);
  EXPECT_EQ(c.context_length, 77);
  EXPECT_EQ(c.vocab_size, 49408);
  EXPECT_EQ(ck->weights.size(), 62u);
  EXPECT_EQ(ck->weights.at("visual.proj").scalar_type(), torch::kFloat16);
  EXPECT_EQ(ck->tokenizer_dir, "");
}

TEST_F(CheckpointLoaderTest, HuggingFaceDirectoryMatchesOpenAI) {
  auto hf = LoadCheckpoint(Tiny() + "/hf");
  auto oa = LoadCheckpoint(Tiny() + "/openai.safetensors");
  ASSERT_OK(hf);
  ASSERT_OK(oa);
  EXPECT_EQ(hf->layout, CheckpointLayout::kHuggingFaceDirectory);
  EXPECT_EQ(hf->tokenizer_dir, Tiny() + "/hf");
  EXPECT_EQ(hf->config.DebugString(), oa->config.DebugString());
  ASSERT_EQ(hf->weights.size(), oa->weights.size());
  for (const auto& [name, t] : oa->weights) {
    ASSERT_EQ(hf->weights.count(name), 1u) << name;
    EXPECT_TRUE(torch::equal(hf->weights.at(name).to(torch::kFloat32), t.to(torch::kFloat32)))
        << name;
  }
  EXPECT_EQ(hf->fingerprint, oa->fingerprint);
}

// OpenAI's layout: ViT-B-16.pt with bpe_simple_vocab_16e6.txt.gz beside it
// (what the deployment files mount). Any other single *.txt.gz counts; two
// are ambiguous, so none is picked.
TEST_F(CheckpointLoaderTest, FindsTheOpenAIVocabularyBesideAPtFile) {
  const std::string model = dir_ + "/ViT-B-16.pt";
  ASSERT_EQ(::symlink((Tiny() + "/openai_jit.pt").c_str(), model.c_str()), 0);
  auto none = LoadCheckpoint(model);
  ASSERT_OK(none);
  EXPECT_EQ(none->tokenizer_dir, "");

  const std::string gz = provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
  const std::string renamed = dir_ + "/my_vocab.txt.gz";
  ASSERT_EQ(::symlink(gz.c_str(), renamed.c_str()), 0);
  auto single = LoadCheckpoint(model);
  ASSERT_OK(single);
  EXPECT_EQ(single->tokenizer_dir, renamed);

  Write("other.txt.gz", "x");
  auto two = LoadCheckpoint(model);
  ASSERT_OK(two);
  EXPECT_EQ(two->tokenizer_dir, "");

  const std::string openai = dir_ + "/bpe_simple_vocab_16e6.txt.gz";
  ASSERT_EQ(::symlink(gz.c_str(), openai.c_str()), 0);
  auto named = LoadCheckpoint(model);
  ASSERT_OK(named);
  EXPECT_EQ(named->tokenizer_dir, openai);
  auto tokenizer = text::Tokenizer::FromPath(named->tokenizer_dir);
  EXPECT_OK(tokenizer);
}

TEST_F(CheckpointLoaderTest, ExpectedShapesMatchTheModel) {
  ClipConfig wide = TinyConfig();
  wide.vision_layers = 3;
  wide.text_layers = 1;
  wide.image_resolution = 48;
  for (const ClipConfig& c : {TinyConfig(), wide}) {
    auto shapes = ExpectedWeightShapes(c);
    ClipModel model(c);
    size_t n = 0;
    for (const auto& item : model->named_parameters()) {
      ASSERT_EQ(shapes.count(item.key()), 1u) << item.key();
      EXPECT_EQ(shapes.at(item.key()), item.value().sizes().vec()) << item.key();
      ++n;
    }
    EXPECT_EQ(n, shapes.size());
  }
  // ViT-B/16: 12 + 12 blocks of 12 tensors, 8 vision and 6 text extras.
  auto b16 = ExpectedWeightShapes(ViTB16Config());
  EXPECT_EQ(b16.size(), 302u);
  EXPECT_EQ(b16.at("visual.positional_embedding"), (std::vector<int64_t>{197, 768}));
  EXPECT_EQ(b16.at("visual.proj"), (std::vector<int64_t>{768, 512}));
}

TEST_F(CheckpointLoaderTest, FingerprintFollowsValues) {
  auto w = FixtureWeights();
  auto a = WeightsFingerprint(w);
  ASSERT_OK(a);
  auto as_fp32 = w;
  for (auto& [name, t] : as_fp32) t = t.to(torch::kFloat32);
  EXPECT_EQ(*WeightsFingerprint(as_fp32), *a);  // precision-independent
  auto changed = w;
  changed["ln_final.bias"] = changed["ln_final.bias"].clone();
  changed["ln_final.bias"][3] = 0.5;
  EXPECT_NE(*WeightsFingerprint(changed), *a);
  auto reshaped = w;
  reshaped["visual.class_embedding"] = reshaped["visual.class_embedding"].view({2, 64});
  EXPECT_NE(*WeightsFingerprint(reshaped), *a);
}

TEST_F(CheckpointLoaderTest, MissingKeyIsNamed) {
  auto w = FixtureWeights();
  w.erase("visual.transformer.resblocks.1.mlp.c_fc.bias");
  std::string path = dir_ + "/missing.safetensors";
  ASSERT_OK(WriteSafetensors(path, w));
  EXPECT_THAT(
      LoadCheckpoint(path),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr(path), HasSubstr("visual.transformer.resblocks.1.mlp.c_fc.bias"),
                     HasSubstr("[512]"))));
  // A key the size inference needs.
  w = FixtureWeights();
  w.erase("visual.conv1.weight");
  ASSERT_OK(WriteSafetensors(path, w));
  EXPECT_THAT(LoadCheckpoint(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("visual.conv1.weight")));
}

TEST_F(CheckpointLoaderTest, MismatchedShapeIsNamed) {
  auto w = FixtureWeights();
  w["transformer.resblocks.0.attn.in_proj_weight"] = torch::zeros({192, 63}, torch::kFloat16);
  std::string path = dir_ + "/shape.safetensors";
  ASSERT_OK(WriteSafetensors(path, w));
  EXPECT_THAT(LoadCheckpoint(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("transformer.resblocks.0.attn.in_proj_weight"),
                             HasSubstr("[192,64]"), HasSubstr("[192,63]"))));
  // Non-square positional grid.
  w = FixtureWeights();
  w["visual.positional_embedding"] = torch::zeros({18, 128}, torch::kFloat16);
  ASSERT_OK(WriteSafetensors(path, w));
  EXPECT_THAT(LoadCheckpoint(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("square")));
  // Integer weights.
  w = FixtureWeights();
  w["ln_final.weight"] = torch::zeros({64}, torch::kInt32);
  ASSERT_OK(WriteSafetensors(path, w));
  EXPECT_THAT(LoadCheckpoint(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ln_final.weight")));
}

TEST_F(CheckpointLoaderTest, UnknownKeyIsNamedButKnownExtrasAreIgnored) {
  auto w = FixtureWeights();
  w["visual.attnpool.weight"] = torch::zeros({4});
  std::string path = dir_ + "/extra.safetensors";
  ASSERT_OK(WriteSafetensors(path, w));
  EXPECT_THAT(LoadCheckpoint(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("visual.attnpool.weight")));
  w = FixtureWeights();
  w["input_resolution"] = torch::tensor(32);
  w["context_length"] = torch::tensor(77);
  ASSERT_OK(WriteSafetensors(path, w));
  auto ck = LoadCheckpoint(path);
  ASSERT_OK(ck);
  EXPECT_EQ(ck->weights.count("input_resolution"), 0u);
  // An absurd layer index is refused, not allocated.
  w = FixtureWeights();
  w["visual.transformer.resblocks.999999999.ln_1.weight"] = torch::zeros({128});
  ASSERT_OK(WriteSafetensors(path, w));
  EXPECT_FALSE(LoadCheckpoint(path).ok());
}

TEST_F(CheckpointLoaderTest, MissingPathsAreNotFound) {
  EXPECT_THAT(LoadCheckpoint(dir_ + "/nope.pt"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(LoadCheckpoint(dir_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.json")));
  Write("config.json", "{}");
  EXPECT_THAT(LoadCheckpoint(dir_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("model.safetensors")));
}

TEST_F(CheckpointLoaderTest, BadHuggingFaceConfigIsAnError) {
  std::string hf_weights = Fixture("hf/model.safetensors");
  std::string config = Fixture("hf/config.json");
  Write("model.safetensors", hf_weights);
  Write("config.json", "this is not json");
  EXPECT_THAT(LoadCheckpoint(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.json")));
  std::string gelu = config;
  gelu.replace(gelu.find("quick_gelu"), 10, "gelu");
  Write("config.json", gelu);
  EXPECT_THAT(LoadCheckpoint(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("hidden_act")));
  std::string wrong_layers = config;
  wrong_layers.replace(wrong_layers.find("\"num_hidden_layers\": 2"), 22,
                       "\"num_hidden_layers\": 3");
  Write("config.json", wrong_layers);
  EXPECT_THAT(LoadCheckpoint(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layers.2")));
  std::string huge = config;
  huge.replace(huge.find("\"hidden_size\": 64"), 17, "\"hidden_size\": 99999999");
  Write("config.json", huge);
  EXPECT_THAT(LoadCheckpoint(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("text_width")));
  Write("config.json", config);
  ASSERT_OK(LoadCheckpoint(dir_));
}

TEST_F(CheckpointLoaderTest, RandomBytesAreErrors) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20; ++i) {
    std::string bytes(rng() % 4096, '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng());
    if (i % 3 == 0 && bytes.size() >= 4) bytes.replace(0, 4, "PK\x03\x04");  // looks like a zip
    EXPECT_FALSE(LoadCheckpoint(Write("random" + std::to_string(i) + ".pt", bytes)).ok()) << i;
  }
  EXPECT_FALSE(LoadCheckpoint(Write("empty.pt", "")).ok());
}

class CorruptFileTest : public CheckpointLoaderTest,
                        public ::testing::WithParamInterface<const char*> {};

TEST_P(CorruptFileTest, TruncatedCopiesAreErrors) {
  const std::string bytes = Fixture(GetParam());
  ASSERT_FALSE(bytes.empty());
  for (double frac : {0.0, 0.001, 0.1, 0.5, 0.9, 0.999}) {
    const size_t cut = static_cast<size_t>(bytes.size() * frac);
    auto st = LoadCheckpoint(Write("cut.bin", bytes.substr(0, cut)));
    EXPECT_FALSE(st.ok()) << GetParam() << " cut at " << cut;
  }
  EXPECT_FALSE(LoadCheckpoint(Write("cut.bin", bytes.substr(0, bytes.size() - 1))).ok());
}

TEST_P(CorruptFileTest, BitFlippedCopiesNeverCrash) {
  const std::string bytes = Fixture(GetParam());
  ASSERT_FALSE(bytes.empty());
  std::mt19937_64 rng(11);
  int errors = 0;
  const int kTries = 10;
  for (int i = 0; i < kTries; ++i) {
    std::string copy = bytes;
    // Half the flips land in the first/last 64 KiB, where headers, pickles
    // and zip directories live; the rest anywhere.
    size_t pos = rng() % copy.size();
    if (i % 2 == 0) {
      const size_t window = std::min<size_t>(copy.size(), 65536);
      pos = (i % 4 == 0) ? rng() % window : copy.size() - 1 - rng() % window;
    }
    copy[pos] = static_cast<char>(copy[pos] ^ (1 << (rng() % 8)));
    auto ck = LoadCheckpoint(Write("flip.bin", copy));
    if (!ck.ok()) {
      ++errors;
    } else {
      EXPECT_EQ(ck->weights.size(), 62u);  // a valid result is a complete one
    }
  }
  RecordProperty("errors", errors);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CorruptFileTest,
                         ::testing::Values("openai.safetensors", "openai_state_dict.pt",
                                           "openai_jit.pt"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& ch : n) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace provp::clip
