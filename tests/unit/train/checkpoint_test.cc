// Tests for core/train/tensor_file and core/train/checkpoint: round trips,
// and corrupt files are clear errors rather than crashes.
#include "core/train/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "core/train/tensor_file.h"
#include "core/util/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::train {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("provp_train_ckpt_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(TensorFileTest, RoundTripsTensorsAndMetadata) {
  const std::string path = TempPath("rt.safetensors");
  TensorFile f;
  f.tensors["a"] = torch::randn({2, 3});
  f.tensors["b"] = torch::arange(5, torch::kInt64);
  f.tensors["c"] = torch::randn({4}).to(torch::kFloat64);  // written as fp32
  f.metadata["k"] = "v";
  ASSERT_OK(WriteTensorFile(path, f));
  auto back = ReadTensorFile(path);
  ASSERT_OK(back);
  EXPECT_TRUE(torch::equal(back->tensors["a"], f.tensors["a"]));
  EXPECT_TRUE(torch::equal(back->tensors["b"], f.tensors["b"]));
  EXPECT_TRUE(torch::allclose(back->tensors["c"], f.tensors["c"].to(torch::kFloat32)));
  EXPECT_EQ(back->metadata["k"], "v");
  std::filesystem::remove(path);
}

TEST(TensorFileTest, CorruptFilesAreInvalidArgument) {
  const std::string path = TempPath("bad.safetensors");
  TensorFile f;
  f.tensors["a"] = torch::randn({16});
  ASSERT_OK(WriteTensorFile(path, f));
  std::string good = *util::ReadFile(path);
  // Truncated data.
  ASSERT_OK(util::WriteFileAtomic(path, good.substr(0, good.size() - 4)));
  EXPECT_THAT(ReadTensorFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tensor a")));
  // Header length larger than the file.
  std::string huge = good;
  huge[7] = '\x7f';
  ASSERT_OK(util::WriteFileAtomic(path, huge));
  EXPECT_THAT(ReadTensorFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header length")));
  // Too short, and not JSON.
  ASSERT_OK(util::WriteFileAtomic(path, "abc"));
  EXPECT_THAT(ReadTensorFile(path), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string junk(8, '\0');
  junk[0] = 4;
  junk += "{{{{";
  ASSERT_OK(util::WriteFileAtomic(path, junk));
  EXPECT_THAT(ReadTensorFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON")));
  // A shape claiming far more elements than the data holds.
  std::string lie = R"({"a":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,64]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(lie.size());
  ASSERT_OK(util::WriteFileAtomic(path, bytes + lie + std::string(64, '\0')));
  EXPECT_THAT(ReadTensorFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tensor a")));
  std::filesystem::remove(path);
  EXPECT_THAT(ReadTensorFile(path), StatusIs(absl::StatusCode::kNotFound));
}

TEST(CheckpointTest, RoundTrip) {
  const std::string path = TempPath("ck.safetensors");
  TrainCheckpoint ck;
  ck.epochs_completed = 3;
  ck.global_step = 12;
  ck.prompts = torch::randn({2, 4, 8});
  ck.momentum_buffer = torch::randn({2, 4, 8});
  std::mt19937_64 rng(42);
  rng();
  std::ostringstream os;
  os << rng;
  ck.rng_state = os.str();
  ck.config.epochs = 9;
  ck.config.model.num_prompts = 4;
  ck.backbone_fingerprint = "abc";
  ck.data_fingerprint = "def";
  ck.best_epoch = 1;
  ck.best_validation_accuracy = 0.5;
  ck.best_prompts = torch::randn({2, 4, 8});
  ck.history.push_back({{"epoch", 0}, {"loss", 1.5}});
  ASSERT_OK(SaveTrainCheckpoint(path, ck));
  auto back = LoadTrainCheckpoint(path);
  ASSERT_OK(back);
  EXPECT_EQ(back->epochs_completed, 3);
  EXPECT_EQ(back->global_step, 12);
  EXPECT_TRUE(torch::equal(back->prompts, ck.prompts));
  EXPECT_TRUE(torch::equal(back->momentum_buffer, ck.momentum_buffer));
  EXPECT_TRUE(torch::equal(back->best_prompts, ck.best_prompts));
  EXPECT_EQ(back->rng_state, ck.rng_state);
  EXPECT_EQ(ConfigToJson(back->config), ConfigToJson(ck.config));
  EXPECT_EQ(back->backbone_fingerprint, "abc");
  EXPECT_EQ(back->best_epoch, 1);
  EXPECT_EQ(back->history, ck.history);
  std::filesystem::remove(path);
}

TEST(CheckpointTest, ForeignFileIsRefused) {
  const std::string path = TempPath("foreign.safetensors");
  TensorFile f;
  f.tensors["prompts"] = torch::randn({1, 2, 3});
  ASSERT_OK(WriteTensorFile(path, f));
  EXPECT_THAT(LoadTrainCheckpoint(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("provp.train_checkpoint")));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace provp::train
