// Parity of the LibTorch CLIP against the reference implementation's
// numbers, for every fixture directory (PROVP_PARITY_FIXTURES, colon-
// separated; default <shared>/fixtures/tiny) and every weight layout found
// in it. One test case per directory x layout; a listed directory that is
// missing fails.
#include <sys/stat.h>

#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/safetensors.h"
#include "core/util/file_util.h"
#include "core/util/torch_status.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::clip {
namespace {

struct Case {
  std::string dir;
  std::string layout;  // file or folder name inside dir; "" when dir is missing/empty
  size_t index;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.dir << " [" << c.layout << "]"; }

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> FixtureDirs() {
  return provp::testing::DirsFromEnv("PROVP_PARITY_FIXTURES",
                                     provp::testing::SharedDir() + "/fixtures/tiny");
}

std::vector<Case> Cases() {
  std::vector<Case> out;
  const std::vector<std::string> dirs = FixtureDirs();
  for (size_t i = 0; i < dirs.size(); ++i) {
    bool any = false;
    for (const char* layout :
         {"openai.safetensors", "openai_state_dict.pt", "openai_jit.pt", "hf"}) {
      if (Exists(dirs[i] + "/" + layout)) {
        out.push_back({dirs[i], layout, i});
        any = true;
      }
    }
    if (!any) out.push_back({dirs[i], "", i});
  }
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string base = info.param.dir;
  while (!base.empty() && base.back() == '/') base.pop_back();
  base = base.substr(base.find_last_of('/') + 1);
  std::string name = std::to_string(info.param.index) + "_" + base + "_" +
                     (info.param.layout.empty() ? "missing" : info.param.layout);
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

// |got - want| <= 1e-4 + 1e-4 |want| everywhere (README tolerances).
void ExpectClose(const std::string& what, const torch::Tensor& got, const torch::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  torch::Tensor g = got.to(torch::kFloat64);
  torch::Tensor w = want.to(torch::kFloat64);
  torch::Tensor excess = (g - w).abs() - (1e-4 + 1e-4 * w.abs());
  const double max_diff = (g - w).abs().max().item<double>();
  EXPECT_LE(excess.max().item<double>(), 0.0) << what << ": max |diff| " << max_diff;
}

torch::Tensor Logits(double scale, const torch::Tensor& image, const torch::Tensor& text) {
  auto norm = [](const torch::Tensor& t) { return t / t.norm(2, -1, true); };
  return scale * torch::matmul(norm(image), norm(text).t());
}

double AlphaFromConfig(const std::string& dir) {
  auto text = util::ReadFile(dir + "/config.json");
  if (!text.ok()) return 0.01;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_object() && j.contains("alpha") && j["alpha"].is_number())
    return j["alpha"].get<double>();
  return 0.01;
}

class ClipParityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ClipParityTest, MatchesReference) {
  const Case& c = GetParam();
  ASSERT_TRUE(Exists(c.dir)) << "fixture directory " << c.dir
                             << " (from PROVP_PARITY_FIXTURES) is missing";
  ASSERT_FALSE(c.layout.empty()) << "fixture directory " << c.dir
                                 << " holds no weights in any known layout";
  auto ref = ReadSafetensors(c.dir + "/reference.safetensors");
  ASSERT_OK(ref);
  auto& r = ref->tensors;
  for (const char* key : {"images", "image_features", "text_tokens", "text_features", "logit_scale",
                          "logits_zero_shot"}) {
    ASSERT_EQ(r.count(key), 1u) << "reference.safetensors lacks " << key;
  }

  auto ck = LoadCheckpoint(c.dir + "/" + c.layout);
  ASSERT_OK(ck);
  const CheckpointLayout want_layout =
      c.layout == "openai.safetensors"     ? CheckpointLayout::kOpenAISafetensors
      : c.layout == "openai_state_dict.pt" ? CheckpointLayout::kTorchSaveStateDict
      : c.layout == "openai_jit.pt"        ? CheckpointLayout::kTorchScriptArchive
                                           : CheckpointLayout::kHuggingFaceDirectory;
  EXPECT_EQ(ck->layout, want_layout) << CheckpointLayoutName(ck->layout);
  auto model = BuildClipModel(*ck, ModelOptions{});
  ASSERT_OK(model);
  ClipModel m = *model;
  torch::NoGradGuard no_grad;

  auto image = util::TorchCall("image", [&] { return m->EncodeImage(r.at("images")); });
  ASSERT_OK(image);
  ExpectClose("image_features", *image, r.at("image_features"));
  auto text = util::TorchCall("text", [&] { return m->EncodeText(r.at("text_tokens")); });
  ASSERT_OK(text);
  ExpectClose("text_features", *text, r.at("text_features"));
  ExpectClose("logit_scale", torch::tensor({std::log(m->LogitScale())}), r.at("logit_scale"));
  const double scale = std::exp(r.at("logit_scale").item<double>());
  ExpectClose("logits_zero_shot", Logits(m->LogitScale(), *image, *text), r.at("logits_zero_shot"));
  EXPECT_NEAR(m->LogitScale(), scale, 1e-4 * scale);

  if (r.count("prompts") != 0) {
    ASSERT_EQ(r.count("provp_image_features"), 1u);
    VisualPrompts vp{r.at("prompts"), AlphaFromConfig(c.dir)};
    auto prompted =
        util::TorchCall("prompted", [&] { return m->EncodeImage(r.at("images"), &vp); });
    ASSERT_OK(prompted);
    ExpectClose("provp_image_features", *prompted, r.at("provp_image_features"));
    if (r.count("provp_logits") != 0) {
      ExpectClose("provp_logits", Logits(m->LogitScale(), *prompted, *text), r.at("provp_logits"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ClipParityTest, ::testing::ValuesIn(Cases()), CaseName);

// The same model in every layout has one fingerprint and one config.
class ClipFingerprintTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClipFingerprintTest, SameAcrossLayouts) {
  const std::string& dir = GetParam();
  ASSERT_TRUE(Exists(dir)) << "fixture directory " << dir << " is missing";
  std::string first;
  std::string first_layout;
  int found = 0;
  for (const char* layout : {"openai.safetensors", "openai_state_dict.pt", "openai_jit.pt", "hf"}) {
    if (!Exists(dir + "/" + layout)) continue;
    auto ck = LoadCheckpoint(dir + "/" + layout);
    ASSERT_OK(ck) << layout;
    EXPECT_EQ(ck->fingerprint.size(), 16u);
    ++found;
    if (first.empty()) {
      first = ck->fingerprint;
      first_layout = layout;
    } else {
      EXPECT_EQ(ck->fingerprint, first) << layout << " vs " << first_layout;
    }
  }
  EXPECT_GE(found, 1) << dir << " holds no weights";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ClipFingerprintTest, ::testing::ValuesIn(FixtureDirs()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return std::to_string(info.index);
                         });

}  // namespace
}  // namespace provp::clip
