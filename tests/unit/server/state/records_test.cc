// The typed record layer: each error of the API's model made in one place
// (NOT_FOUND and ALREADY_EXISTS with ResourceInfo, DATA_LOSS for a payload
// that does not parse), paging with filters, and updates that keep the
// request id.
#include "server/state/records.h"

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "server/state/errors.h"
#include "server/state/tables.h"
#include "tests/testing/failing_store.h"
#include "tests/testing/in_memory_store.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

v1::ClassSet Named(const std::string& id) {
  v1::ClassSet cs;
  cs.set_name("classSets/" + id);
  cs.add_class_names("cat");
  return cs;
}

google::rpc::ResourceInfo ResourceOf(const absl::Status& s) {
  google::rpc::Status rpc = ToRpcStatus(s);
  for (const auto& any : rpc.details()) {
    google::rpc::ResourceInfo info;
    if (any.UnpackTo(&info)) return info;
  }
  return {};
}

class RecordsTest : public ::testing::Test {
 protected:
  testing::InMemoryStore store_;
  RecordTable<v1::ClassSet> table_ = ClassSetTable(&store_);
};

TEST_F(RecordsTest, GetOfAMissingRecordIsNotFoundWithResourceInfo) {
  auto got = table_.Get("nope");
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kNotFound, HasSubstr("classSets/nope")));
  EXPECT_EQ(ResourceOf(got.status()).resource_type(), "provp.v1.ClassSet");
  EXPECT_EQ(ResourceOf(got.status()).resource_name(), "classSets/nope");
  EXPECT_THAT(table_.Delete("nope"), StatusIs(absl::StatusCode::kNotFound));
  auto exists = table_.Exists("nope");
  ASSERT_OK(exists);
  EXPECT_FALSE(*exists);
}

TEST_F(RecordsTest, InsertOfATakenIdIsAlreadyExistsWithResourceInfo) {
  ASSERT_OK(table_.Insert("a", Named("a"), {"ACTIVE", "", 1}));
  absl::Status again = table_.Insert("a", Named("a"), {"ACTIVE", "", 2});
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("classSets/a")));
  EXPECT_EQ(ReasonOf(again), "ALREADY_EXISTS");
  EXPECT_EQ(ResourceOf(again).resource_name(), "classSets/a");
  auto got = table_.Get("a");
  ASSERT_OK(got);
  EXPECT_EQ(got->class_names(0), "cat");
}

TEST_F(RecordsTest, APayloadThatDoesNotParseIsDataLoss) {
  ASSERT_OK(store_.Insert(store::Kind::kClassSet, {"bad", "ACTIVE", "", 1, "\xff\xff garbage"}));
  auto got = table_.Get("bad");
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("classSets/bad")));
  EXPECT_EQ(ReasonOf(got.status()), "CORRUPT_RECORD");
  // Listing does not skip it silently either.
  EXPECT_THAT(table_.ListPage(10, ""), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(RecordsTest, UpdateKeepsRequestIdAndCreateTime) {
  ASSERT_OK(table_.Insert("a", Named("a"), {"CREATING", "req-1", 42}));
  v1::ClassSet changed = Named("a");
  changed.add_class_names("dog");
  ASSERT_OK(table_.Update("a", changed, "ACTIVE"));
  auto found = table_.FindByRequestId("req-1");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->class_names_size(), 2);
  auto raw = store_.Get(store::Kind::kClassSet, "a");
  ASSERT_OK(raw);
  EXPECT_EQ(raw->state, "ACTIVE");
  EXPECT_EQ(raw->create_time_us, 42);
  EXPECT_THAT(table_.Update("nope", changed, "ACTIVE"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RecordsTest, PagesFollowTheFilterAndTheirTokens) {
  for (int i = 0; i < 5; ++i) {
    const std::string id = "s" + std::to_string(i);
    ASSERT_OK(table_.Insert(id, Named(id), {i % 2 ? "ACTIVE" : "FAILED", "", 100 - i}));
  }
  auto first = table_.ListPage(2, "");
  ASSERT_OK(first);
  ASSERT_EQ(first->items.size(), 2u);
  EXPECT_EQ(first->items[0].name(), "classSets/s0");
  EXPECT_EQ(first->next_page_token, "2");
  auto last = table_.ListPage(2, "4");
  ASSERT_OK(last);
  ASSERT_EQ(last->items.size(), 1u);
  EXPECT_EQ(last->next_page_token, "");
  RecordFilter active{{"ACTIVE"}, store::ListOptions::Order::kOldestFirst};
  auto filtered = table_.ListPage(0, "", active);
  ASSERT_OK(filtered);
  ASSERT_EQ(filtered->items.size(), 2u);
  EXPECT_EQ(filtered->items[0].name(), "classSets/s3");  // create time 97 < 99
  auto bad = table_.ListPage(2, "x");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ReasonOf(bad.status()), "INVALID_PAGE_TOKEN");
  EXPECT_EQ(ClampPageSize(0, 50), 50);
  EXPECT_EQ(ClampPageSize(5000, 50), 1000);
}

TEST_F(RecordsTest, StoreErrorsAreReturnedNeverReadAsAbsent) {
  testing::FailingStore failing(&store_);
  auto table = ClassSetTable(&failing);
  failing.FailEveryCall(testing::StoreOp::kGet);
  EXPECT_THAT(table.Exists("a"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(table.Get("a"), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace provp::server
