// Tests for core/util: file helpers and the status macros.
#include "core/util/file_util.h"

#include <unistd.h>

#include <filesystem>

#include "core/util/status_macros.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::util {
namespace {

using ::provp::testing::StatusIs;

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("provp_util_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(FileUtilTest, AtomicWriteThenRead) {
  const std::string path = TempPath("a.bin");
  ASSERT_OK(WriteFileAtomic(path, std::string("hello\0world", 11)));
  auto data = ReadFile(path);
  ASSERT_OK(data);
  EXPECT_EQ(*data, std::string("hello\0world", 11));
  ASSERT_OK(WriteFileAtomic(path, "second"));
  EXPECT_EQ(*ReadFile(path), "second");
  std::filesystem::remove(path);
}

TEST(FileUtilTest, MissingFileIsNotFound) {
  EXPECT_THAT(ReadFile(TempPath("does-not-exist")), StatusIs(absl::StatusCode::kNotFound));
}

TEST(FileUtilTest, SizeCapIsEnforced) {
  const std::string path = TempPath("big.bin");
  ASSERT_OK(WriteFileAtomic(path, std::string(100, 'x')));
  EXPECT_THAT(ReadFile(path, 10), StatusIs(absl::StatusCode::kResourceExhausted));
  std::filesystem::remove(path);
}

TEST(FileUtilTest, WriteIntoMissingDirectoryFails) {
  EXPECT_THAT(WriteFileAtomic("/nonexistent-dir-provp/x", "a"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(FileUtilTest, FnvIsStableAndChains) {
  EXPECT_EQ(Fnv1a64("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  const uint64_t ab = Fnv1a64("ab", 2);
  EXPECT_EQ(Fnv1a64("b", 1, Fnv1a64("a", 1)), ab);
}

absl::StatusOr<int> Half(int x) {
  if (x % 2) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

absl::Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagateErrorsAndValues) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(CheckEven(4));
  EXPECT_THAT(CheckEven(3), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::util
