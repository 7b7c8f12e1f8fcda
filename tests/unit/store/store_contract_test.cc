// The Store contract (store.h), one parameterised suite run against both
// backends: SQLite in a temporary folder and a real PostgreSQL 15 started by
// scripts/pg-test-server.sh (a fresh database per test). CRUD, idempotency
// lookups, pagination and state filters, event ids, durability across
// reopening, schema version checks, compare-and-set updates, and leases:
// expiry, renewal, release, and racing claimers on two connections that
// must never get the same record.
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/store/store.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/status_matchers.h"

namespace provp::store {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::PostgresServer;
using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

// One PostgreSQL per test process (shared with the ctest fixture when set).
// A server this process started is stopped when the test program ends (a
// gtest Environment's TearDown), so running the binary directly leaves
// nothing behind.
class PostgresEnvironment : public ::testing::Environment {
 public:
  PostgresServer* Get() {
    if (!server_) {
      auto s = PostgresServer::StartOrShare();
      if (!s.ok()) {
        ADD_FAILURE() << s.status();
        return nullptr;
      }
      server_ = std::move(*s);
    }
    return server_.get();
  }
  void TearDown() override { server_.reset(); }

 private:
  std::unique_ptr<PostgresServer> server_;
};

PostgresEnvironment* const g_postgres = static_cast<PostgresEnvironment*>(
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment()));

PostgresServer* SharedPostgres() { return g_postgres->Get(); }

class StoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool postgres() const { return GetParam() == "postgresql"; }

  void SetUp() override {
    char tmpl[] = "/tmp/provp_store_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    if (postgres()) {
      PostgresServer* pg = SharedPostgres();
      ASSERT_NE(pg, nullptr);
      auto uri = pg->CreateDatabase("store");
      ASSERT_OK(uri);
      spec_ = *uri;
    } else {
      spec_ = "sqlite:" + dir_ + "/state.db";
    }
    auto s = Open();
    ASSERT_OK(s);
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)!system(cmd.c_str());
  }
  absl::StatusOr<std::unique_ptr<Store>> Open() { return OpenStore(spec_, ""); }
  // Marks the schema as migrated by a newer binary.
  void BumpSchemaVersion(int version) {
    if (postgres()) {
      ASSERT_OK(PostgresServer::Execute(
          spec_,
          absl::StrCat("INSERT INTO provp_schema_migrations (version) VALUES (", version, ")")));
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/state.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, absl::StrCat("PRAGMA user_version = ", version).c_str(), nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  Record Rec(std::string id, std::string state, int64_t t, std::string req = "") {
    Record r;
    r.id = id;
    r.state = state;
    r.request_id = req;
    r.create_time_us = t;
    r.data = "data-" + id;
    return r;
  }
  std::string dir_, spec_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContractTest, InsertGetDelete) {
  ASSERT_OK(store_->Insert(Kind::kDataset, Rec("a", "ACTIVE", 1)));
  EXPECT_THAT(store_->Insert(Kind::kDataset, Rec("a", "ACTIVE", 2)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  auto r = store_->Get(Kind::kDataset, "a");
  ASSERT_OK(r);
  EXPECT_EQ(r->data, "data-a");
  EXPECT_EQ(r->create_time_us, 1);
  EXPECT_EQ(r->version, 1);
  // Kinds are separate tables.
  EXPECT_THAT(store_->Get(Kind::kJob, "a"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store_->Delete(Kind::kDataset, "a"));
  EXPECT_THAT(store_->Get(Kind::kDataset, "a"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Delete(Kind::kDataset, "a"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreContractTest, BinaryPayloadsRoundTrip) {
  Record r = Rec("bin", "ACTIVE", 1);
  r.data = std::string("\0\x01\xff\\x'\"", 8);
  for (int i = 0; i < 256; ++i) r.data.push_back(static_cast<char>(i));
  ASSERT_OK(store_->Insert(Kind::kPromptSet, r));
  auto got = store_->Get(Kind::kPromptSet, "bin");
  ASSERT_OK(got);
  EXPECT_EQ(got->data, r.data);
  auto ev = store_->AppendEvent("j", [&](int64_t) { return r.data; });
  ASSERT_OK(ev);
  auto events = store_->ListEvents("j", 0, 0);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].data, r.data);
}

TEST_P(StoreContractTest, PutReplacesAndFindsByRequestId) {
  ASSERT_OK(store_->Put(Kind::kJob, Rec("j1", "QUEUED", 5, "req-1")));
  Record updated = Rec("j1", "RUNNING", 5, "req-1");
  updated.data = "v2";
  ASSERT_OK(store_->Put(Kind::kJob, updated));
  auto found = store_->FindByRequestId(Kind::kJob, "req-1");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->data, "v2");
  EXPECT_EQ((*found)->state, "RUNNING");
  EXPECT_EQ((*found)->version, 2);
  auto none = store_->FindByRequestId(Kind::kJob, "req-2");
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  auto empty = store_->FindByRequestId(Kind::kJob, "");
  ASSERT_OK(empty);
  EXPECT_FALSE(empty->has_value());
}

TEST_P(StoreContractTest, ListPaginatesFiltersAndOrders) {
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("b", "QUEUED", 10)));
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("a", "RUNNING", 30)));
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("c", "SUCCEEDED", 20)));
  ListOptions by_id;
  auto all = store_->List(Kind::kJob, by_id);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "a");
  EXPECT_EQ((*all)[2].id, "c");
  ListOptions newest{0, 2, {}, ListOptions::Order::kNewestFirst};
  auto page1 = store_->List(Kind::kJob, newest);
  ASSERT_OK(page1);
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].id, "a");
  EXPECT_EQ((*page1)[1].id, "c");
  newest.offset = 2;
  auto page2 = store_->List(Kind::kJob, newest);
  ASSERT_OK(page2);
  ASSERT_EQ(page2->size(), 1u);
  EXPECT_EQ((*page2)[0].id, "b");
  ListOptions filtered{0, 0, {"QUEUED", "RUNNING"}, ListOptions::Order::kById};
  auto f = store_->List(Kind::kJob, filtered);
  ASSERT_OK(f);
  ASSERT_EQ(f->size(), 2u);
  EXPECT_EQ((*f)[0].id, "a");
  EXPECT_EQ((*f)[1].id, "b");
  ListOptions oldest{0, 1, {}, ListOptions::Order::kOldestFirst};
  auto first = store_->List(Kind::kJob, oldest);
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].id, "b");
  auto n = store_->Count(Kind::kJob, {"SUCCEEDED"});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 1);
  auto total = store_->Count(Kind::kJob, {});
  ASSERT_OK(total);
  EXPECT_EQ(*total, 3);
}

TEST_P(StoreContractTest, EventsGetIncreasingIdsPerJob) {
  for (int i = 0; i < 3; ++i) {
    auto id = store_->AppendEvent("j", [](int64_t id) { return "e" + std::to_string(id); });
    ASSERT_OK(id);
    EXPECT_EQ(*id, i + 1);
  }
  auto other = store_->AppendEvent("k", [](int64_t id) { return std::string("x"); });
  ASSERT_OK(other);
  EXPECT_EQ(*other, 1);
  auto after1 = store_->ListEvents("j", 1, 0);
  ASSERT_OK(after1);
  ASSERT_EQ(after1->size(), 2u);
  EXPECT_EQ((*after1)[0].id, 2);
  EXPECT_EQ((*after1)[0].data, "e2");
  auto limited = store_->ListEvents("j", 0, 1);
  ASSERT_OK(limited);
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].id, 1);
  // Deleting a job drops its events.
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("j", "SUCCEEDED", 1)));
  ASSERT_OK(store_->Delete(Kind::kJob, "j"));
  auto gone = store_->ListEvents("j", 0, 0);
  ASSERT_OK(gone);
  EXPECT_TRUE(gone->empty());
}

TEST_P(StoreContractTest, ConcurrentAppendsFromTwoConnectionsGetDistinctIds) {
  auto second = Open();
  ASSERT_OK(second);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<int64_t> ids;
  std::vector<absl::Status> errors;
  for (Store* s : {store_.get(), second->get()}) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < 25; ++i) {
        auto id = s->AppendEvent("shared", [](int64_t id) { return std::to_string(id); });
        std::lock_guard<std::mutex> lock(mu);
        if (id.ok()) {
          ids.insert(*id);
        } else {
          errors.push_back(id.status());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(*ids.begin(), 1);
  EXPECT_EQ(*ids.rbegin(), 50);
}

TEST_P(StoreContractTest, SurvivesReopen) {
  ASSERT_OK(store_->Insert(Kind::kPromptSet, Rec("p", "UNLOADED", 7)));
  ASSERT_OK(store_->AppendEvent("j", [](int64_t) { return std::string("ev"); }));
  store_.reset();
  auto reopened = Open();
  ASSERT_OK(reopened);
  auto r = (*reopened)->Get(Kind::kPromptSet, "p");
  ASSERT_OK(r);
  EXPECT_EQ(r->state, "UNLOADED");
  auto ev = (*reopened)->ListEvents("j", 0, 0);
  ASSERT_OK(ev);
  EXPECT_EQ(ev->size(), 1u);
}

TEST_P(StoreContractTest, RefusesASchemaFromANewerBinary) {
  store_.reset();
  BumpSchemaVersion(SchemaVersion() + 1);
  EXPECT_THAT(Open(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("newer")));
}

TEST_P(StoreContractTest, UpdateIsCompareAndSet) {
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("j", "QUEUED", 1)));
  auto r = store_->Get(Kind::kJob, "j");
  ASSERT_OK(r);
  Record next = *r;
  next.state = "RUNNING";
  next.data = "v2";
  auto v = store_->Update(Kind::kJob, next, r->version);
  ASSERT_OK(v);
  EXPECT_EQ(*v, r->version + 1);
  // A writer holding the old version lost the race.
  next.data = "stale";
  EXPECT_THAT(store_->Update(Kind::kJob, next, r->version), StatusIs(absl::StatusCode::kAborted));
  auto now = store_->Get(Kind::kJob, "j");
  ASSERT_OK(now);
  EXPECT_EQ(now->data, "v2");
  EXPECT_EQ(now->state, "RUNNING");
  EXPECT_EQ(now->version, *v);
  next.id = "missing";
  EXPECT_THAT(store_->Update(Kind::kJob, next, 1), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StoreContractTest, ClaimTakesOldestFreeOrExpiredLease) {
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("late", "QUEUED", 20)));
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("early", "QUEUED", 10)));
  ASSERT_OK(store_->Insert(Kind::kJob, Rec("done", "SUCCEEDED", 1)));
  ClaimOptions a{{"QUEUED", "RUNNING"}, "replica-a", /*now_us=*/1000, /*lease_until_us=*/2000};
  auto first = store_->Claim(Kind::kJob, a);
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->id, "early");
  EXPECT_EQ((*first)->lease_owner, "replica-a");
  EXPECT_EQ((*first)->lease_expires_us, 2000);
  ClaimOptions b{{"QUEUED", "RUNNING"}, "replica-b", 1500, 2500};
  auto second = store_->Claim(Kind::kJob, b);
  ASSERT_OK(second);
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->id, "late");
  // Both live: nothing left for a third claimer.
  ClaimOptions c{{"QUEUED", "RUNNING"}, "replica-c", 1900, 3000};
  auto none = store_->Claim(Kind::kJob, c);
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  // a renews (still holds it); b does not, and its lease expires.
  ASSERT_OK(store_->RenewLease(Kind::kJob, "early", "replica-a", 5000));
  EXPECT_THAT(store_->RenewLease(Kind::kJob, "early", "replica-b", 5000),
              StatusIs(absl::StatusCode::kAborted));
  c.now_us = 2600;
  auto taken = store_->Claim(Kind::kJob, c);
  ASSERT_OK(taken);
  ASSERT_TRUE(taken->has_value());
  EXPECT_EQ((*taken)->id, "late");
  EXPECT_EQ((*taken)->lease_owner, "replica-c");
  // b comes back too late: its lease is gone.
  EXPECT_THAT(store_->RenewLease(Kind::kJob, "late", "replica-b", 9000),
              StatusIs(absl::StatusCode::kAborted));
  // Put and Update keep the lease; Get shows it.
  auto rec = store_->Get(Kind::kJob, "late");
  ASSERT_OK(rec);
  Record running = *rec;
  running.state = "RUNNING";
  ASSERT_OK(store_->Update(Kind::kJob, running, rec->version));
  ASSERT_OK(store_->Put(Kind::kJob, running));
  rec = store_->Get(Kind::kJob, "late");
  ASSERT_OK(rec);
  EXPECT_EQ(rec->lease_owner, "replica-c");
  EXPECT_EQ(rec->lease_expires_us, 3000);
  // Releasing frees it at once, whatever the clock; a stranger's release is
  // a no-op.
  ASSERT_OK(store_->ReleaseLease(Kind::kJob, "early", "replica-b"));
  ASSERT_OK(store_->ReleaseLease(Kind::kJob, "late", "replica-c"));
  auto again = store_->Claim(Kind::kJob, ClaimOptions{{"RUNNING"}, "replica-d", 0, 100});
  ASSERT_OK(again);
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->id, "late");
  EXPECT_THAT(store_->RenewLease(Kind::kJob, "gone", "replica-a", 1),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->ReleaseLease(Kind::kJob, "gone", "replica-a"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Claim(Kind::kJob, ClaimOptions{{}, "x", 0, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Two connections (as two replicas have), three threads each, claiming in a
// loop until the queue is empty: every record is claimed exactly once.
TEST_P(StoreContractTest, RacingClaimersNeverShareARecord) {
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_OK(store_->Insert(Kind::kJob, Rec(absl::StrCat("job-", i), "QUEUED", i)));
  }
  auto second = Open();
  ASSERT_OK(second);
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> claims;
  std::vector<absl::Status> errors;
  std::vector<std::thread> threads;
  int worker = 0;
  for (Store* s : {store_.get(), second->get()}) {
    for (int t = 0; t < 3; ++t, ++worker) {
      threads.emplace_back([&, s, owner = absl::StrCat("w", worker)] {
        for (;;) {
          auto got = s->Claim(Kind::kJob, ClaimOptions{{"QUEUED"}, owner, 0, int64_t{1} << 60});
          std::lock_guard<std::mutex> lock(mu);
          if (!got.ok()) {
            errors.push_back(got.status());
            return;
          }
          if (!got->has_value()) return;
          claims[(*got)->id].push_back(owner);
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(claims.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, owners] : claims) {
    EXPECT_EQ(owners.size(), 1u) << id << " claimed by " << owners.size() << " workers";
  }
}

// A state.db written before schema versioning (user_version 0, no lease
// columns) is migrated in place and keeps its rows.
TEST(StoreOpenTest, MigratesAnUnversionedSqliteFile) {
  char tmpl[] = "/tmp/provp_store_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/state.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, request_id "
                         "TEXT NOT NULL, create_time_us INTEGER NOT NULL, data BLOB NOT NULL);"
                         "INSERT INTO jobs VALUES ('old', 'QUEUED', '', 5, x'0102');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenSqliteStore(path);
  ASSERT_OK(store);
  auto r = (*store)->Get(Kind::kJob, "old");
  ASSERT_OK(r);
  EXPECT_EQ(r->data, std::string("\x01\x02"));
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(r->lease_owner, "");
  auto claimed = (*store)->Claim(Kind::kJob, ClaimOptions{{"QUEUED"}, "me", 0, 10});
  ASSERT_OK(claimed);
  EXPECT_TRUE(claimed->has_value());
  store->reset();
  std::string cmd = std::string("rm -rf ") + tmpl;
  (void)!system(cmd.c_str());
}

TEST(StoreOpenTest, BadSpecsAreClearErrors) {
  EXPECT_THAT(OpenStore("mysql://x", "/tmp/unused.db"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a store")));
  EXPECT_THAT(OpenStore("sqlite:", "/tmp/unused.db"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OpenSqliteStore("/nonexistent-dir/x/state.db"),
              StatusIs(absl::StatusCode::kUnavailable));
  // Nothing listens on port 1 of loopback; the password stays out of the
  // message.
  auto pg = OpenStore("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2", "");
  EXPECT_THAT(pg, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(pg.status().message()), ::testing::Not(HasSubstr("secret")));
  EXPECT_EQ(RedactStoreSpec("postgresql://u:secret@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(RedactStoreSpec("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_TRUE(IsSharedStore("postgresql://h/db"));
  EXPECT_FALSE(IsSharedStore(""));
  EXPECT_FALSE(IsSharedStore("sqlite:/x"));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest,
                         ::testing::Values(std::string("sqlite"), std::string("postgresql")),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace provp::store
