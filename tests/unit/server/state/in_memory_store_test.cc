// The in-memory store keeps the parts of the Store contract the server
// core's tests lean on (the full suite runs on SQLite and PostgreSQL):
// versions and compare-and-set, leases, and the failing store passing every
// call through until told otherwise.
#include "tests/testing/in_memory_store.h"

#include "gtest/gtest.h"
#include "tests/testing/failing_store.h"
#include "tests/testing/status_matchers.h"

namespace provp::testing {
namespace {

using store::Kind;
using store::Record;

TEST(InMemoryStoreTest, VersionsAndCompareAndSet) {
  InMemoryStore s;
  ASSERT_OK(s.Insert(Kind::kJob, Record{"j", "QUEUED", "r", 5, "v1", 99, "someone", 7}));
  auto r = s.Get(Kind::kJob, "j");
  ASSERT_OK(r);
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(r->lease_owner, "");
  Record next = *r;
  next.data = "v2";
  auto v = s.Update(Kind::kJob, next, 1);
  ASSERT_OK(v);
  EXPECT_EQ(*v, 2);
  EXPECT_THAT(s.Update(Kind::kJob, next, 1), StatusIs(absl::StatusCode::kAborted));
  next.id = "none";
  EXPECT_THAT(s.Update(Kind::kJob, next, 1), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(s.Put(Kind::kJob, Record{"j", "RUNNING", "r", 5, "v3"}));
  EXPECT_EQ(s.Get(Kind::kJob, "j")->version, 3);
}

TEST(InMemoryStoreTest, LeasesGoToTheOldestFreeRecord) {
  InMemoryStore s;
  ASSERT_OK(s.Insert(Kind::kJob, Record{"b", "QUEUED", "", 10, ""}));
  ASSERT_OK(s.Insert(Kind::kJob, Record{"a", "QUEUED", "", 20, ""}));
  ASSERT_OK(s.Insert(Kind::kJob, Record{"c", "DONE", "", 1, ""}));
  store::ClaimOptions o{{"QUEUED"}, "me", 100, 200};
  auto first = s.Claim(Kind::kJob, o);
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->id, "b");
  EXPECT_EQ((*first)->lease_owner, "me");
  auto second = s.Claim(Kind::kJob, o);
  ASSERT_OK(second);
  EXPECT_EQ((*second)->id, "a");
  auto none = s.Claim(Kind::kJob, o);
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  // Expired leases are free again; renewal needs the owner.
  EXPECT_THAT(s.RenewLease(Kind::kJob, "b", "other", 500), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK(s.RenewLease(Kind::kJob, "b", "me", 150));
  store::ClaimOptions later{{"QUEUED"}, "other", 160, 300};
  auto taken = s.Claim(Kind::kJob, later);
  ASSERT_OK(taken);
  EXPECT_EQ((*taken)->id, "b");
  ASSERT_OK(s.ReleaseLease(Kind::kJob, "b", "me"));  // not the holder: no-op
  EXPECT_EQ(s.Get(Kind::kJob, "b")->lease_owner, "other");
  ASSERT_OK(s.ReleaseLease(Kind::kJob, "b", "other"));
  EXPECT_EQ(s.Get(Kind::kJob, "b")->lease_owner, "");
  EXPECT_THAT(s.Claim(Kind::kJob, store::ClaimOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FailingStoreTest, FailsExactlyTheChosenCalls) {
  InMemoryStore base;
  FailingStore s(&base);
  s.FailNthCall(StoreOp::kInsert, 2);
  ASSERT_OK(s.Insert(Kind::kJob, Record{"a", "QUEUED", "", 1, ""}));
  EXPECT_THAT(s.Insert(Kind::kJob, Record{"b", "QUEUED", "", 1, ""}),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(s.Insert(Kind::kJob, Record{"c", "QUEUED", "", 1, ""}));
  // The failed call did not reach the store.
  EXPECT_THAT(base.Get(Kind::kJob, "b"), StatusIs(absl::StatusCode::kNotFound));
  s.FailEveryCall(StoreOp::kClaim);
  EXPECT_THAT(s.Claim(Kind::kJob, {{"QUEUED"}, "me", 0, 1}),
              StatusIs(absl::StatusCode::kUnavailable));
  s.Heal();
  EXPECT_OK(s.Claim(Kind::kJob, {{"QUEUED"}, "me", 0, 1}));
  EXPECT_EQ(s.calls(StoreOp::kInsert), 3);
  EXPECT_EQ(s.failures(), 2);
}

}  // namespace
}  // namespace provp::testing
