// The shared-folder FileStore: content keys, idempotent and atomic puts
// (a concurrent reader never sees a partial file), verification on read,
// streamed copies of local files, and clear errors for bad keys.
#include "core/store/file_store.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
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
  ASSERT_OK(store_->Remove(*key));
  auto has = store_->Contains(*key);
  ASSERT_OK(has);
  EXPECT_FALSE(*has);
  EXPECT_THAT(store_->LocalPath(*key), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store_->Remove(*key));
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
}

TEST_F(FileStoreTest, BadKeysAreInvalidArguments) {
  for (const char* bad :
       {"", "md5:abc", "sha256:xyz", "sha256:../../etc/passwd",
        "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}) {
    EXPECT_THAT(store_->LocalPath(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_THAT(store_->Remove(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
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
