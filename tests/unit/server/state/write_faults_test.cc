// File-system faults in the middle of an upload and of a prompt-set import
// (issue 14): the server core runs over a FaultInjectionEnv, each write step
// the operation takes is failed in turn with ENOSPC and then EIO, and after
// every failure the caller has a clear status, no record names the dataset
// or prompt set, no temporary file is left, a restarted core finds the file
// store holding exactly what it held before, and the same operation then
// succeeds (the server keeps serving). Checkpoints and store commits have
// their own fault suites (tests/unit/train/write_fault_test.cc,
// tests/unit/store/sqlite_store_fault_test.cc).
#include <cerrno>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fault_injection_env.h"
#include "tests/unit/server/state/core_fixture.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// `nonce` makes each file's bytes (its content key) its own: a file the
// store already holds is not written again, so it would take no steps.
std::string FakePromptSetFile(const std::string& nonce) {
  return R"({"fake_prompt_set":1,"backbone":"fake-backbone-0001","nonce":")" + nonce +
         R"(","base_class_names":["red","green"],"novel_class_names":["blue"]})";
}

class WriteFaultsTest : public CoreFixture {
 protected:
  void SetUp() override {
    env_ = &fault_env_;
    CoreFixture::SetUp();
  }

  // Every regular file under the data folder, relative to it.
  std::set<std::string> Files() const {
    std::set<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file()) out.insert(fs::relative(it->path(), dir_).string());
    }
    return out;
  }

  absl::StatusOr<v1::Dataset> Upload(const std::string& id) {
    std::vector<v1::UploadDatasetRequest> msgs(3);
    v1::DatasetMetadata* meta = msgs[0].mutable_metadata();
    meta->set_dataset_id(id);
    for (const char* n : {"red", "green"}) meta->add_class_names(n);
    // Two messages of images, so a fault can fall between them too; the
    // pixels differ from every earlier upload's, so no image is already
    // in the file store.
    const int serial = ++uploads_;
    for (int c = 0; c < 2; ++c) {
      for (int i = 0; i < 3; ++i) {
        v1::LabeledImage* img = msgs[1 + c].mutable_images()->add_images();
        img->set_encoded(SolidPng(static_cast<uint8_t>(serial & 0xff),
                                  static_cast<uint8_t>(serial >> 8),
                                  static_cast<uint8_t>(3 * c + i)));
        img->set_label(c);
        img->set_split(i == 2 ? v1::TEST : v1::TRAIN);
      }
    }
    size_t next = 0;
    return datasets_->Upload([&](v1::UploadDatasetRequest* m) {
      if (next >= msgs.size()) return false;
      *m = msgs[next++];
      return true;
    });
  }

  absl::StatusOr<v1::PromptSet> Import(const std::string& id) {
    std::vector<v1::ImportPromptSetRequest> msgs(3);
    msgs[0].mutable_metadata()->set_prompt_set_id(id);
    msgs[0].mutable_metadata()->set_load(true);
    // The file in two chunks: two appends to the staging file.
    const std::string file = FakePromptSetFile(id);
    msgs[1].set_chunk(file.substr(0, file.size() / 2));
    msgs[2].set_chunk(file.substr(file.size() / 2));
    size_t next = 0;
    return prompt_sets_->Import([&](v1::ImportPromptSetRequest* m) {
      if (next >= msgs.size()) return false;
      *m = msgs[next++];
      return true;
    });
  }

  // Counts the write steps `op` takes on a fresh id, then fails each in
  // turn with each errno; `exists` tells whether an id has a record.
  template <typename Op, typename Exists>
  void FailEveryStep(const std::string& what, Op op, Exists exists) {
    fault_env_.CountOnly();
    ASSERT_OK(op(what + "-counted"));
    const int64_t steps = fault_env_.steps();
    fault_env_.Disarm();
    ASSERT_GE(steps, 3) << "the " << what << " wrote almost nothing: is the Env seam in use?";
    int trial = 0;
    for (int error : {ENOSPC, EIO}) {
      for (int64_t step = 1; step <= steps; ++step) {
        const std::string id = what + "-" + std::to_string(++trial);
        SCOPED_TRACE(what + " with step " + std::to_string(step) + " of " + std::to_string(steps) +
                     " failing with errno " + std::to_string(error));
        const std::set<std::string> before = Files();
        testing::FaultInjectionEnv::Fault fault;
        fault.nth = step;
        fault.error = error;
        fault_env_.Arm(fault);
        auto result = op(id);
        const int64_t fired = fault_env_.fired();
        fault_env_.Disarm();
        ASSERT_EQ(fired, 1);
        ASSERT_FALSE(result.ok()) << "a failed write step was not reported";
        EXPECT_EQ(result.status().code(), error == ENOSPC ? absl::StatusCode::kResourceExhausted
                                                          : absl::StatusCode::kInternal);
        EXPECT_THAT(std::string(result.status().message()), HasSubstr("cannot "));
        EXPECT_FALSE(exists(id));
        EXPECT_EQ(Files(), before) << "left behind or lost by the failed " << what;
        Restart();  // as a crashed and restarted server finds it
        EXPECT_FALSE(exists(id));
        EXPECT_EQ(Files(), before) << "changed by the restart after the failed " << what;
        auto again = op(id);  // the server keeps serving
        ASSERT_OK(again);
        EXPECT_TRUE(exists(id));
      }
    }
  }

  testing::FaultInjectionEnv fault_env_;
  int uploads_ = 0;
};

TEST_F(WriteFaultsTest, UploadFailsCleanlyAtEveryWriteStep) {
  FailEveryStep(
      "upload", [this](const std::string& id) { return Upload(id); },
      [this](const std::string& id) { return datasets_->Get(id).ok(); });
}

TEST_F(WriteFaultsTest, PromptSetImportFailsCleanlyAtEveryWriteStep) {
  FailEveryStep(
      "import", [this](const std::string& id) { return Import(id); },
      [this](const std::string& id) { return prompt_sets_->Get(id).ok(); });
}

}  // namespace
}  // namespace provp::server
