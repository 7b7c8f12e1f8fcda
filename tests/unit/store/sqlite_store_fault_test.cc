// Fault injection into SQLite commits through the store's Env seam: every
// database write and fsync of a Put (and of an AppendEvent) is failed in
// turn with ENOSPC and EIO. Each failure must be a clear Status, the store
// must keep working once the fault is gone, and a reopened store (a restart)
// must show the record either as before or as written, never half. Also: a
// damaged, a foreign and a locked database file at open.
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/store/store.h"
#include "gtest/gtest.h"
#include "tests/testing/fault_injection_env.h"
#include "tests/testing/status_matchers.h"

namespace provp::store {
namespace {

namespace fs = std::filesystem;
using ::provp::testing::FaultInjectionEnv;
using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

class SqliteStoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        (fs::temp_directory_path() / ("provp_store_fault_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ + "/state.db";
  }
  void TearDown() override { fs::remove_all(dir_); }
  static Record Rec(const std::string& id, const std::string& data) {
    return Record{id, "ACTIVE", "", 1, data};
  }
  std::string dir_, path_;
};

TEST_F(SqliteStoreFaultTest, EveryCommitStepFailsCleanlyAndTheStoreRecovers) {
  FaultInjectionEnv env;
  {
    auto store = OpenSqliteStore(path_, &env);
    ASSERT_OK(store);
    ASSERT_OK((*store)->Put(Kind::kDataset, Rec("d", "v0")));
  }
  // Count the database steps of one Put.
  int64_t steps = 0;
  {
    auto store = OpenSqliteStore(path_, &env);
    ASSERT_OK(store);
    env.CountOnly();
    ASSERT_OK((*store)->Put(Kind::kDataset, Rec("d", "v1")));
    steps = env.steps();
    env.Disarm();
  }
  ASSERT_GE(steps, 2) << "a WAL commit writes and syncs";

  int version = 1;
  for (int err : {ENOSPC, EIO}) {
    for (int64_t k = 1; k <= steps; ++k) {
      SCOPED_TRACE("errno " + std::to_string(err) + ", step " + std::to_string(k));
      const std::string before = "v" + std::to_string(version);
      const std::string after = "v" + std::to_string(version + 1);
      {
        auto store = OpenSqliteStore(path_, &env);
        ASSERT_OK(store);
        env.Arm({k, err});
        absl::Status s = (*store)->Put(Kind::kDataset, Rec("d", after));
        env.Disarm();
        if (env.fired() == 0) continue;  // fewer steps this time (checkpointed WAL)
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.code(), err == ENOSPC ? absl::StatusCode::kResourceExhausted
                                          : absl::StatusCode::kInternal)
            << s;
        EXPECT_THAT(std::string(s.message()), HasSubstr("sqlite"));
        // The same connection keeps working once the disk is back.
        auto now = (*store)->Get(Kind::kDataset, "d");
        ASSERT_OK(now);
        EXPECT_TRUE(now->data == before || now->data == after) << now->data;
        ASSERT_OK((*store)->Put(Kind::kDataset, Rec("d", after)));
        ASSERT_OK((*store)->Put(Kind::kDataset, Rec("other", after)));
      }
      // A restart sees the last successful write.
      auto reopened = OpenSqliteStore(path_);
      ASSERT_OK(reopened);
      auto got = (*reopened)->Get(Kind::kDataset, "d");
      ASSERT_OK(got);
      EXPECT_EQ(got->data, after);
      ++version;
    }
  }
}

TEST_F(SqliteStoreFaultTest, EventAppendFailureLeavesNoGapInEventIds) {
  FaultInjectionEnv env;
  auto store = OpenSqliteStore(path_, &env);
  ASSERT_OK(store);
  auto make = [](int64_t id) { return "event " + std::to_string(id); };
  ASSERT_OK((*store)->AppendEvent("job", make));
  env.Arm({1, ENOSPC, std::nullopt, "", /*sticky=*/true});
  EXPECT_THAT((*store)->AppendEvent("job", make), StatusIs(absl::StatusCode::kResourceExhausted));
  env.Disarm();
  auto id = (*store)->AppendEvent("job", make);
  ASSERT_OK(id);
  EXPECT_EQ(*id, 2);
  auto events = (*store)->ListEvents("job", 0, 0);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].data, "event 2");
}

TEST_F(SqliteStoreFaultTest, DamagedDatabaseIsRefusedWithAClearMessage) {
  {
    auto store = OpenSqliteStore(path_);
    ASSERT_OK(store);
    for (int i = 0; i < 200; ++i) {
      ASSERT_OK((*store)->Put(Kind::kJob, Rec("job-" + std::to_string(i), std::string(500, 'x'))));
    }
  }
  // Overwrite a page in the middle of the file with garbage.
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    const std::string junk(4096, '\x5a');
    f.write(junk.data(), junk.size());
  }
  auto store = OpenSqliteStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path_));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("restore it from a backup"));
}

TEST_F(SqliteStoreFaultTest, ForeignFileIsRefusedWithAClearMessage) {
  {
    std::ofstream f(path_, std::ios::binary);
    f << "this is not a database, just a text file that happens to be called state.db\n";
    f << std::string(8192, 'q');
  }
  auto store = OpenSqliteStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a database"));
}

TEST_F(SqliteStoreFaultTest, LockHeldByAnotherToolIsRefused) {
  // E.g. `sqlite3 state.db` with an open write transaction.
  ASSERT_OK(OpenSqliteStore(path_));  // create it, then close
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto store = OpenSqliteStore(path_, util::Env::Default(), /*busy_timeout_ms=*/200);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("locked"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path_));
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

}  // namespace
}  // namespace provp::store
