// Fault injection into checkpoint and prompt-set writes: each step of the
// atomic write (create, write, fsync, rename, directory fsync) fails in
// turn with ENOSPC and with EIO. The save must return a clear Status naming
// the file, the previous file must still load (or the new one, complete,
// when only the directory fsync failed), and no temporary file may remain.
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "core/clip/config.h"
#include "core/provp/provp_options.h"
#include "core/train/checkpoint.h"
#include "core/train/prompt_set.h"
#include "gtest/gtest.h"
#include "tests/testing/fault_injection_env.h"
#include "tests/testing/status_matchers.h"

namespace provp::train {
namespace {

namespace fs = std::filesystem;
using ::provp::testing::FaultInjectionEnv;
using ::provp::testing::IsOk;
using ::testing::HasSubstr;

class WriteFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        (fs::temp_directory_path() / ("provp_write_fault_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  // Runs save(env) with each step failed in turn; `version` of the file on
  // disk afterwards must be the old or the new one.
  template <typename Save, typename Version>
  void SweepFaults(const std::string& file, Save save, Version version) {
    FaultInjectionEnv env;
    ASSERT_OK(save(util::Env::Default(), 1));
    env.CountOnly();
    ASSERT_OK(save(&env, 1));
    const int64_t steps = env.steps();
    ASSERT_GE(steps, 5);
    for (int err : {ENOSPC, EIO}) {
      for (int64_t k = 1; k <= steps; ++k) {
        SCOPED_TRACE("errno " + std::to_string(err) + ", step " + std::to_string(k));
        ASSERT_OK(save(util::Env::Default(), 1));
        env.Arm({k, err});
        absl::Status s = save(&env, 2);
        env.Disarm();
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.code(), err == ENOSPC ? absl::StatusCode::kResourceExhausted
                                          : absl::StatusCode::kInternal)
            << s;
        EXPECT_THAT(std::string(s.message()), HasSubstr(file));
        auto v = version();
        ASSERT_OK(v);
        EXPECT_TRUE(*v == 1 || *v == 2) << *v;
        EXPECT_EQ(Names(), std::vector<std::string>{file});
      }
    }
  }
  std::string dir_;
};

TEST_F(WriteFaultTest, CheckpointSaveFailsCleanlyAtEveryStep) {
  const std::string path = dir_ + "/epoch.ckpt";
  auto save = [&](util::Env* env, int64_t epochs) {
    TrainCheckpoint ck;
    ck.epochs_completed = epochs;
    ck.prompts = torch::full({2, 4, 8}, static_cast<float>(epochs));
    ck.momentum_buffer = torch::zeros({2, 4, 8});
    return SaveTrainCheckpoint(path, ck, env);
  };
  auto version = [&]() -> absl::StatusOr<int64_t> {
    auto ck = LoadTrainCheckpoint(path);
    if (!ck.ok()) return ck.status();
    if (ck->prompts.min().item<float>() != static_cast<float>(ck->epochs_completed)) {
      return absl::DataLossError("prompts and metadata from different saves");
    }
    return ck->epochs_completed;
  };
  SweepFaults("epoch.ckpt", save, version);
}

TEST_F(WriteFaultTest, PromptSetSaveFailsCleanlyAtEveryStep) {
  const std::string path = dir_ + "/set.provp";
  const clip::ClipConfig tiny = clip::TinyConfig();
  auto save = [&](util::Env* env, int64_t v) {
    PromptSet set;
    set.info.model = provp::DefaultOptionsFor(provp::Variant::kProvpRef);
    set.info.model.depth = 1;
    set.info.model.num_prompts = 3;
    set.info.templates = {"a photo of a {}."};
    set.info.class_names = {"cat", "v" + std::to_string(v)};
    set.info.vision_width = tiny.vision_width;
    set.info.vision_layers = tiny.vision_layers;
    set.prompts = torch::full({1, 3, tiny.vision_width}, static_cast<float>(v));
    return SavePromptSet(path, set, env);
  };
  auto version = [&]() -> absl::StatusOr<int64_t> {
    auto set = ReadPromptSet(path);
    if (!set.ok()) return set.status();
    const int64_t v = std::stoll(set->info.class_names[1].substr(1));
    if (set->prompts.max().item<float>() != static_cast<float>(v)) {
      return absl::DataLossError("prompts and metadata from different saves");
    }
    return v;
  };
  SweepFaults("set.provp", save, version);
}

}  // namespace
}  // namespace provp::train
