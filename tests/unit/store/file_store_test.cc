// The shared-folder FileStore: content keys, idempotent and atomic puts
// (a concurrent reader never sees a partial file), verification on read
// (Read and LocalPath), streamed copies of local files, clear errors for bad
// keys, the collector's primitives (List, stored-time refresh, Remove with a
// cutoff, interrupted removals put back at open) and file-system faults
// through the Env seam.
#include "core/store/file_store.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/fault_injection_env.h"
#include "tests/testing/status_matchers.h"

namespace provp::store {
namespace {

namespace fs = std::filesystem;
using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/provp_files_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto s = OpenSharedDirFileStore(root_ + "/shared");
    ASSERT_OK(s);
    store_ = std::move(*s);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
  std::unique_ptr<FileStore> store_;
};

TEST_F(FileStoreTest, PutIsContentAddressedAndIdempotent) {
  // sha256("abc"), the FIPS 180-2 example.
  EXPECT_EQ(ContentKey("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto key = store_->Put("abc");
  ASSERT_OK(key);
  EXPECT_EQ(*key, ContentKey("abc"));
  auto again = store_->Put("abc");
  ASSERT_OK(again);
  EXPECT_EQ(*again, *key);
  auto path = store_->LocalPath(*key);
  ASSERT_OK(path);
  EXPECT_TRUE(fs::path(*path).string().find(root_ + "/shared/sha256/ba/") == 0) << *path;
  auto data = store_->Read(*key, 1 << 20);
  ASSERT_OK(data);
  EXPECT_EQ(*data, "abc");
  EXPECT_TRUE(fs::is_empty(root_ + "/shared/tmp"));
  auto removed = store_->Remove(*key);
  ASSERT_OK(removed);
  EXPECT_TRUE(*removed);
  auto has = store_->Contains(*key);
  ASSERT_OK(has);
  EXPECT_FALSE(*has);
  EXPECT_THAT(store_->LocalPath(*key), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Read(*key, 10), StatusIs(absl::StatusCode::kNotFound));
  removed = store_->Remove(*key);
  ASSERT_OK(removed);
  EXPECT_FALSE(*removed);
  EXPECT_TRUE(fs::is_empty(root_ + "/shared/trash"));
}

TEST_F(FileStoreTest, PutFileStreamsAndMatchesPut) {
  std::string big(3 * (1 << 20) + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + (i >> 9));
  const std::string local = root_ + "/local.bin";
  std::ofstream(local, std::ios::binary).write(big.data(), big.size());
  auto key = store_->PutFile(local);
  ASSERT_OK(key);
  EXPECT_EQ(*key, ContentKey(big));
  auto data = store_->Read(*key, uint64_t{1} << 30);
  ASSERT_OK(data);
  EXPECT_TRUE(*data == big);
  EXPECT_THAT(store_->PutFile(root_ + "/missing"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(fs::is_empty(root_ + "/shared/tmp"));
}

TEST_F(FileStoreTest, ReadDetectsCorruption) {
  auto key = store_->Put("prompt tensor bytes");
  ASSERT_OK(key);
  auto path = store_->LocalPath(*key);
  ASSERT_OK(path);
  std::ofstream(*path, std::ios::binary | std::ios::trunc) << "tampered";
  EXPECT_THAT(store_->Read(*key, 1 << 20), StatusIs(absl::StatusCode::kDataLoss));
  // LocalPath hands the file to readers that open it themselves (the
  // engine), so it checks the content too.
  EXPECT_THAT(store_->LocalPath(*key), StatusIs(absl::StatusCode::kDataLoss));
  // Storing the right bytes again repairs a copy of the wrong size.
  ASSERT_OK(store_->Put("prompt tensor bytes"));
  EXPECT_OK(store_->LocalPath(*key));
  EXPECT_THAT(store_->Read(*key, 3), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(FileStoreTest, ListShowsStoredTimesThatAPutRefreshes) {
  auto a = store_->Put("aaaa");
  auto b = store_->Put("bbbbbb");
  ASSERT_OK(a);
  ASSERT_OK(b);
  // Make a look an hour old, as if stored long ago.
  auto path = store_->LocalPath(*a);
  ASSERT_OK(path);
  const auto hour_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(*path, hour_ago);
  std::ofstream(root_ + "/shared/sha256/stray.txt") << "not a key";
  auto listed = store_->List();
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 2u);
  const absl::Time now = absl::Now();
  for (const StoredFile& f : *listed) {
    if (f.key == *a) {
      EXPECT_EQ(f.size_bytes, 4u);
      EXPECT_LT(f.stored_time, now - absl::Minutes(59));
    } else {
      EXPECT_EQ(f.key, *b);
      EXPECT_EQ(f.size_bytes, 6u);
      EXPECT_GT(f.stored_time, now - absl::Minutes(1));
    }
  }
  // A cutoff before the last store keeps the file; storing it again moves
  // the stored time past the cutoff.
  const absl::Time cutoff = now - absl::Minutes(10);
  auto kept = store_->Remove(*b, cutoff);
  ASSERT_OK(kept);
  EXPECT_FALSE(*kept);
  ASSERT_OK(store_->Put("aaaa"));
  kept = store_->Remove(*a, cutoff);
  ASSERT_OK(kept);
  EXPECT_FALSE(*kept);
  EXPECT_OK(store_->Read(*a, 10));
  fs::last_write_time(*path, hour_ago);
  auto removed = store_->Remove(*a, cutoff);
  ASSERT_OK(removed);
  EXPECT_TRUE(*removed);
  EXPECT_TRUE(fs::is_empty(root_ + "/shared/trash"));
}

// A crash between Remove's move to trash/ and its decision leaves the file
// there; the next open puts it back (it may still be in use).
TEST_F(FileStoreTest, OpenPutsBackAFileWhoseRemovalWasInterrupted) {
  auto key = store_->Put("in use");
  ASSERT_OK(key);
  auto path = store_->LocalPath(*key);
  ASSERT_OK(path);
  const std::string hex = key->substr(7);
  fs::rename(*path, root_ + "/shared/trash/" + hex + ".0123456789abcdef");
  std::ofstream(root_ + "/shared/tmp/99-00aa.part") << "half a write";
  SharedDirOptions o;
  o.root = root_ + "/shared";
  o.leftover_min_age = absl::ZeroDuration();
  auto reopened = OpenSharedDirFileStore(o);
  ASSERT_OK(reopened);
  EXPECT_OK((*reopened)->Read(*key, 100));
  EXPECT_TRUE(fs::is_empty(root_ + "/shared/trash"));
  EXPECT_TRUE(fs::is_empty(root_ + "/shared/tmp"));
}

// Every mutating step of a put goes through the Env: failing any one of
// them returns its error and leaves neither the key nor a temporary file.
TEST_F(FileStoreTest, AFailedWriteStepLeavesNothingBehind) {
  ::provp::testing::FaultInjectionEnv env;
  SharedDirOptions o;
  o.root = root_ + "/faulty";
  o.env = &env;
  auto store = OpenSharedDirFileStore(o);
  ASSERT_OK(store);
  const std::string content = "a prompt set's bytes";
  env.CountOnly();
  ASSERT_OK((*store)->Put("counting run"));
  const int64_t steps = env.steps();
  ASSERT_GE(steps, 4);  // create, write, fsync, mkdir, rename, fsync dir
  for (int64_t nth = 1; nth <= steps; ++nth) {
    env.Arm({nth, ENOSPC, std::nullopt, "", false});
    auto key = (*store)->Put(content);
    ASSERT_FALSE(key.ok()) << "step " << nth << ": " << env.log().back();
    const bool after_rename = env.log().back().rfind("fsync directory", 0) == 0;
    EXPECT_EQ(key.status().code(), absl::StatusCode::kResourceExhausted) << key.status();
    EXPECT_TRUE(fs::is_empty(root_ + "/faulty/tmp")) << "step " << nth;
    auto has = (*store)->Contains(ContentKey(content));
    ASSERT_OK(has);
    // Only a failed fsync of the folder comes after the file took its name.
    EXPECT_EQ(*has, after_rename) << "step " << nth;
    if (*has) {
      ASSERT_OK((*store)->Remove(ContentKey(content)));
    }
  }
  env.Arm({1, EIO, util::FileOp::kRename, "", false});
  auto key = (*store)->Put(content);
  EXPECT_THAT(key, StatusIs(absl::StatusCode::kInternal));
  env.Disarm();
  ASSERT_OK((*store)->Put(content));
  // Removal's steps fail cleanly too: the file stays readable.
  env.Arm({1, EIO, util::FileOp::kRename, "", false});
  EXPECT_THAT((*store)->Remove(ContentKey(content)), StatusIs(absl::StatusCode::kInternal));
  env.Disarm();
  EXPECT_OK((*store)->Read(ContentKey(content), 100));
}

TEST_F(FileStoreTest, BadKeysAreInvalidArguments) {
  for (const char* bad :
       {"", "md5:abc", "sha256:xyz", "sha256:../../etc/passwd",
        "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}) {
    EXPECT_THAT(store_->LocalPath(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_THAT(store_->Remove(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_THAT(store_->Read(bad, 10), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_FALSE(IsContentKey(bad)) << bad;
  }
  EXPECT_TRUE(IsContentKey(ContentKey("x")));
}

// A reader polling the final path while another process writes 16 MiB sees
// no file or the whole file, never a prefix; two processes storing the same
// content both succeed with one key.
TEST_F(FileStoreTest, ConcurrentWritersAndReadersSeeWholeFiles) {
  std::string content(16 << 20, 'x');
  content[12345] = 'y';
  const std::string key = ContentKey(content);
  const std::string final_path = root_ + "/shared/sha256/" + key.substr(7, 2) + "/" + key.substr(7);
  std::atomic<bool> done{false};
  std::atomic<int> partial{0};
  std::thread reader([&] {
    while (!done) {
      std::error_code ec;
      if (fs::exists(final_path, ec)) {
        auto size = fs::file_size(final_path, ec);
        if (!ec && size != content.size()) ++partial;
      }
    }
  });
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto other = OpenSharedDirFileStore(root_ + "/shared");
    _exit(other.ok() && (*other)->Put(content).ok() ? 0 : 1);
  }
  auto mine = store_->Put(content);
  int status = 0;
  waitpid(child, &status, 0);
  done = true;
  reader.join();
  ASSERT_OK(mine);
  EXPECT_EQ(*mine, key);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(partial.load(), 0);
  auto data = store_->Read(key, uint64_t{1} << 30);
  ASSERT_OK(data);
  EXPECT_EQ(data->size(), content.size());
}

}  // namespace
}  // namespace provp::store
