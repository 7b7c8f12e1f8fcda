// Parity of the ProVP-Ref objective with the reference implementation, per
// fixture directory (PROVP_PARITY_FIXTURES, colon-separated; default
// <shared>/fixtures/tiny): prompted logits, CE, Ref and total loss (1e-4),
// d loss / d prompts (1e-5) and the prompts after one torch::optim::SGD
// step with the fixture's hyperparameters (1e-5). Weights come from
// openai.safetensors through the project's checkpoint loader; the text
// features are encoded from the fixture's token ids.
#include <sys/stat.h>

#include <cctype>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/clip/safetensors.h"
#include "core/provp/losses.h"
#include "core/provp/provp_model.h"
#include "core/provp/provp_options.h"
#include "core/util/file_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::provp {
namespace {

struct Dir {
  std::string path;
  size_t index;
};

void PrintTo(const Dir& d, std::ostream* os) { *os << d.path; }

std::vector<Dir> Dirs() {
  std::vector<Dir> out;
  const auto dirs = ::provp::testing::DirsFromEnv("PROVP_PARITY_FIXTURES",
                                                  ::provp::testing::SharedDir() + "/fixtures/tiny");
  for (size_t i = 0; i < dirs.size(); ++i) out.push_back({dirs[i], i});
  return out;
}

std::string DirName(const ::testing::TestParamInfo<Dir>& info) {
  std::string base = info.param.path;
  while (!base.empty() && base.back() == '/') base.pop_back();
  base = std::to_string(info.param.index) + "_" + base.substr(base.find_last_of('/') + 1);
  for (char& ch : base) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return base;
}

// |got - want| <= atol + rtol |want| everywhere.
void ExpectClose(const std::string& what, const torch::Tensor& got, const torch::Tensor& want,
                 double atol, double rtol) {
  ASSERT_EQ(got.numel(), want.numel()) << what;
  torch::Tensor g = got.detach().to(torch::kFloat64).reshape(want.sizes());
  torch::Tensor w = want.to(torch::kFloat64);
  const double max_diff = (g - w).abs().max().item<double>();
  const double excess = ((g - w).abs() - (atol + rtol * w.abs())).max().item<double>();
  EXPECT_LE(excess, 0.0) << what << ": max |diff| " << max_diff;
}

class ProvpParityTest : public ::testing::TestWithParam<Dir> {};

TEST_P(ProvpParityTest, LossesGradientAndSgdStepMatchTheReference) {
  const std::string dir = GetParam().path;
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0) << "fixture directory missing: " << dir;
  auto config_text = util::ReadFile(dir + "/config.json");
  ASSERT_OK(config_text);
  const nlohmann::json config = nlohmann::json::parse(*config_text);
  auto ref = clip::ReadSafetensors(dir + "/reference.safetensors");
  ASSERT_OK(ref);
  auto& t = ref->tensors;
  for (const char* key : {"images", "prompts", "labels", "text_tokens", "provp_logits", "loss_xe",
                          "loss_ref", "loss_total", "prompts_grad", "prompts_after_sgd_step"}) {
    ASSERT_TRUE(t.count(key)) << dir << ": reference.safetensors lacks " << key;
  }
  auto checkpoint = clip::LoadCheckpoint(dir + "/openai.safetensors");
  ASSERT_OK(checkpoint);
  auto clip_model = clip::BuildClipModel(*checkpoint, clip::ModelOptions{});
  ASSERT_OK(clip_model);

  const torch::Tensor prompts = t["prompts"].to(torch::kFloat32);
  ProvpOptions options;
  options.num_prompts = prompts.size(1);
  options.depth = prompts.size(0);
  options.alpha = config.value("alpha", 0.01);
  options.ref_lambda = config.value("lambda_ref", 1.0);
  EXPECT_NEAR(ReferenceInitBound(prompts.size(2)), config.value("prompt_init_bound", 0.0), 1e-12);

  torch::Tensor text;
  {
    torch::NoGradGuard no_grad;
    text = (*clip_model)->EncodeText(t["text_tokens"]);
  }
  auto model = ProvpModel::Create(*clip_model, options, /*seed=*/0);
  ASSERT_OK(model);
  ASSERT_OK((*model)->SetPrompts(prompts));

  auto terms = (*model)->Loss(t["images"], t["labels"], text);
  ASSERT_OK(terms);
  ExpectClose("provp_logits", terms->logits, t["provp_logits"], 1e-4, 1e-4);
  ExpectClose("loss_xe", terms->ce, t["loss_xe"], 1e-4, 1e-4);
  ExpectClose("loss_ref", terms->ref, t["loss_ref"], 1e-4, 1e-4);
  ExpectClose("loss_total", terms->total, t["loss_total"], 1e-4, 1e-4);

  torch::Tensor param = (*model)->trainable_parameters().front();
  const auto& sgd = config["sgd"];
  torch::optim::SGD opt({param}, torch::optim::SGDOptions(sgd.value("lr", 0.1))
                                     .momentum(sgd.value("momentum", 0.9))
                                     .dampening(sgd.value("dampening", 0.0))
                                     .weight_decay(sgd.value("weight_decay", 5e-4))
                                     .nesterov(sgd.value("nesterov", false)));
  opt.zero_grad();
  terms->total.backward();
  ASSERT_TRUE(param.grad().defined());
  ExpectClose("prompts_grad", param.grad(), t["prompts_grad"], 1e-5, 0.0);
  opt.step();
  ExpectClose("prompts_after_sgd_step", param, t["prompts_after_sgd_step"], 1e-5, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ProvpParityTest, ::testing::ValuesIn(Dirs()), DirName);

}  // namespace
}  // namespace provp::provp
