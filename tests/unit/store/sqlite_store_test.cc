// Contract tests of the SQLite store: CRUD, idempotency lookups, pagination
// and state filters, event ids, and durability across reopening.
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "core/store/store.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::store {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/provp_store_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state.db";
    auto s = OpenSqliteStore(path_);
    ASSERT_OK(s);
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)system(cmd.c_str());
  }
  Record Rec(std::string id, std::string state, int64_t t, std::string req = "") {
    return Record{id, state, req, t, "data-" + id};
  }
  std::string dir_, path_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, InsertGetDelete) {
  ASSERT_OK(store_->Insert(Kind::kDataset, Rec("a", "ACTIVE", 1)));
  EXPECT_THAT(store_->Insert(Kind::kDataset, Rec("a", "ACTIVE", 2)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  auto r = store_->Get(Kind::kDataset, "a");
  ASSERT_OK(r);
  EXPECT_EQ(r->data, "data-a");
  EXPECT_EQ(r->create_time_us, 1);
  // Kinds are separate tables.
  EXPECT_THAT(store_->Get(Kind::kJob, "a"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store_->Delete(Kind::kDataset, "a"));
  EXPECT_THAT(store_->Get(Kind::kDataset, "a"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Delete(Kind::kDataset, "a"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SqliteStoreTest, PutReplacesAndFindsByRequestId) {
  ASSERT_OK(store_->Put(Kind::kJob, Rec("j1", "QUEUED", 5, "req-1")));
  Record updated = Rec("j1", "RUNNING", 5, "req-1");
  updated.data = "v2";
  ASSERT_OK(store_->Put(Kind::kJob, updated));
  auto found = store_->FindByRequestId(Kind::kJob, "req-1");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->data, "v2");
  EXPECT_EQ((*found)->state, "RUNNING");
  auto none = store_->FindByRequestId(Kind::kJob, "req-2");
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  auto empty = store_->FindByRequestId(Kind::kJob, "");
  ASSERT_OK(empty);
  EXPECT_FALSE(empty->has_value());
}

TEST_F(SqliteStoreTest, ListPaginatesFiltersAndOrders) {
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

TEST_F(SqliteStoreTest, EventsGetIncreasingIdsPerJob) {
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

TEST_F(SqliteStoreTest, SurvivesReopen) {
  ASSERT_OK(store_->Insert(Kind::kPromptSet, Rec("p", "UNLOADED", 7)));
  ASSERT_OK(store_->AppendEvent("j", [](int64_t) { return std::string("ev"); }));
  store_.reset();
  auto reopened = OpenSqliteStore(path_);
  ASSERT_OK(reopened);
  auto r = (*reopened)->Get(Kind::kPromptSet, "p");
  ASSERT_OK(r);
  EXPECT_EQ(r->state, "UNLOADED");
  auto ev = (*reopened)->ListEvents("j", 0, 0);
  ASSERT_OK(ev);
  EXPECT_EQ(ev->size(), 1u);
}

TEST_F(SqliteStoreTest, UnopenablePathIsAnError) {
  EXPECT_THAT(OpenSqliteStore("/nonexistent-dir/x/state.db"),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace provp::store
