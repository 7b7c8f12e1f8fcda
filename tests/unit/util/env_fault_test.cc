// Fault injection at the file system (FaultInjectionEnv): WriteFileAtomic
// is made to fail at each of its steps with ENOSPC and with EIO. Every
// failure must be a clear Status naming the file, leave the old contents in
// place (or, when only the directory fsync after the rename failed, the new
// contents complete), never a partial file, and no temporary file behind.
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/util/env.h"
#include "core/util/file_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fault_injection_env.h"
#include "tests/testing/status_matchers.h"

namespace provp::util {
namespace {

namespace fs = std::filesystem;
using ::provp::testing::FaultInjectionEnv;
using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

class EnvFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("provp_env_fault_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  std::string dir_;
};

TEST_F(EnvFaultTest, AtomicWriteFailsCleanlyAtEveryStep) {
  const std::string path = dir_ + "/record.json";
  const std::string old_data = "old contents";
  const std::string new_data(100000, 'n');
  FaultInjectionEnv env;
  // Count the steps of one write.
  env.CountOnly();
  ASSERT_OK(WriteFileAtomic(path, old_data, &env));
  const int64_t steps = env.steps();
  ASSERT_GE(steps, 5) << "create, write, fsync, rename, fsync dir";

  for (int err : {ENOSPC, EIO}) {
    for (int64_t k = 1; k <= steps; ++k) {
      SCOPED_TRACE("errno " + std::to_string(err) + ", step " + std::to_string(k));
      ASSERT_OK(WriteFileAtomic(path, old_data));
      env.Arm({k, err});
      absl::Status s = WriteFileAtomic(path, new_data, &env);
      env.Disarm();
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.code(),
                err == ENOSPC ? absl::StatusCode::kResourceExhausted : absl::StatusCode::kInternal);
      EXPECT_THAT(std::string(s.message()), HasSubstr("record.json"));
      EXPECT_THAT(std::string(s.message()),
                  HasSubstr(err == ENOSPC ? "No space left on device" : "Input/output error"));
      // Old or complete new contents, nothing in between, no temp file.
      auto data = ReadFile(path);
      ASSERT_OK(data);
      EXPECT_TRUE(*data == old_data || *data == new_data) << data->size() << " bytes";
      EXPECT_EQ(Names(), std::vector<std::string>{"record.json"});
      // The next write, without the fault, works.
      ASSERT_OK(WriteFileAtomic(path, new_data, &env));
      EXPECT_EQ(*ReadFile(path), new_data);
    }
  }
}

TEST_F(EnvFaultTest, StickyDiskFullFailsEveryLaterWrite) {
  FaultInjectionEnv env;
  env.Arm({1, ENOSPC, FileOp::kAppend, "", /*sticky=*/true});
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(WriteFileAtomic(dir_ + "/f" + std::to_string(i), "x", &env),
                StatusIs(absl::StatusCode::kResourceExhausted));
  }
  EXPECT_EQ(env.fired(), 3);
  EXPECT_TRUE(Names().empty());
}

TEST_F(EnvFaultTest, PathFilterOnlyFailsMatchingFiles) {
  FaultInjectionEnv env;
  env.Arm({1, EIO, std::nullopt, "victim", true});
  EXPECT_OK(WriteFileAtomic(dir_ + "/bystander", "x", &env));
  EXPECT_THAT(WriteFileAtomic(dir_ + "/victim", "x", &env), StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(Names(), std::vector<std::string>{"bystander"});
}

TEST(AtomicWriteTempTest, RecognisesOnlyItsOwnTemporaryNames) {
  EXPECT_TRUE(IsAtomicWriteTemp("meta.json.provp-tmp-1234-00ab12cd"));
  EXPECT_TRUE(IsAtomicWriteTemp("a.provp-tmp-1-f"));
  EXPECT_FALSE(IsAtomicWriteTemp("meta.json"));
  EXPECT_FALSE(IsAtomicWriteTemp(".provp-tmp-1-f"));  // no target name
  EXPECT_FALSE(IsAtomicWriteTemp("a.provp-tmp-12"));
  EXPECT_FALSE(IsAtomicWriteTemp("a.provp-tmp-12-"));
  EXPECT_FALSE(IsAtomicWriteTemp("a.provp-tmp-zz-ff"));
  EXPECT_FALSE(IsAtomicWriteTemp("photo.provp-tmp-1-2.jpg"));
}

TEST(AtomicWriteTempTest, WrittenTempNamesAreRecognised) {
  // A crash between create and rename leaves exactly such a name: make one
  // by failing the rename and keeping the file (RemoveFile fails too).
  const std::string dir =
      (fs::temp_directory_path() / ("provp_env_tmpname_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  FaultInjectionEnv env;
  env.Arm({3, EIO, std::nullopt, "", /*sticky=*/true});  // create, write, then fsync onwards fail
  EXPECT_FALSE(WriteFileAtomic(dir + "/x.bin", "data", &env).ok());
  env.Disarm();
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(IsAtomicWriteTemp(names[0])) << names[0];
  fs::remove_all(dir);
}

}  // namespace
}  // namespace provp::util
