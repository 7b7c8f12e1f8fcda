// The error model below the gRPC edge: reasons set at the source (even by a
// core library) survive, details are typed google.rpc messages that
// ToRpcStatus passes on as they are, and nothing is read from messages.
#include "server/state/errors.h"

#include "core/util/error_reason.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace provp::server {
namespace {

template <typename T>
std::vector<T> Unpacked(const google::rpc::Status& rpc) {
  std::vector<T> out;
  for (const auto& any : rpc.details()) {
    T detail;
    if (any.UnpackTo(&detail)) out.push_back(detail);
  }
  return out;
}

TEST(ErrorModelTest, DetailsAreTypedPayloads) {
  absl::Status s = InvalidArgument("INVALID_TOP_K", "top_k must be >= 0", "top_k");
  auto br = DetailOf<google::rpc::BadRequest>(s);
  ASSERT_TRUE(br.has_value());
  EXPECT_EQ(br->field_violations(0).field(), "top_k");
  EXPECT_TRUE(s.GetPayload("type.googleapis.com/google.rpc.BadRequest").has_value());
  EXPECT_FALSE(DetailOf<google::rpc::ResourceInfo>(s).has_value());
  EXPECT_EQ(ReasonOf(s), "INVALID_TOP_K");
}

TEST(ErrorModelTest, ToRpcStatusPassesEveryDetailOnWithErrorInfoFirst) {
  absl::Status s = ResourceExhausted("JOB_QUEUE_FULL", "max_queued_jobs", "full", 1500);
  // Any typed detail attached at the source rides along.
  google::rpc::ResourceInfo extra;
  extra.set_resource_name("tuningJobs/queue");
  AddDetail(s, extra);
  google::rpc::Status rpc = ToRpcStatus(s);
  ASSERT_GE(rpc.details_size(), 4);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "JOB_QUEUE_FULL");
  EXPECT_EQ(info.domain(), kErrorDomain);
  ASSERT_EQ(Unpacked<google::rpc::QuotaFailure>(rpc).size(), 1u);
  EXPECT_EQ(Unpacked<google::rpc::QuotaFailure>(rpc)[0].violations(0).subject(), "max_queued_jobs");
  ASSERT_EQ(Unpacked<google::rpc::RetryInfo>(rpc).size(), 1u);
  EXPECT_EQ(Unpacked<google::rpc::RetryInfo>(rpc)[0].retry_delay().seconds(), 1);
  EXPECT_EQ(Unpacked<google::rpc::RetryInfo>(rpc)[0].retry_delay().nanos(), 500000000);
  ASSERT_EQ(Unpacked<google::rpc::ResourceInfo>(rpc).size(), 1u);
  EXPECT_EQ(Unpacked<google::rpc::ResourceInfo>(rpc)[0].resource_name(), "tuningJobs/queue");
  // The reason payload is not itself a detail.
  EXPECT_EQ(Unpacked<google::rpc::ErrorInfo>(rpc).size(), 1u);
}

TEST(ErrorModelTest, AReasonSetBelowTheServerIsKept) {
  // As image_io reports a pixel budget overrun: the words of the message
  // play no part.
  absl::Status source = util::WithErrorReason(absl::InvalidArgumentError("no pixel, no limit"),
                                              util::kReasonImageTooLarge);
  EXPECT_EQ(ReasonOf(source), "IMAGE_TOO_LARGE");
  EXPECT_EQ(ReasonOf(WithReason(source, "IMAGE_DECODE_FAILED")), "IMAGE_TOO_LARGE");
  EXPECT_EQ(ReasonOf(absl::InvalidArgumentError("image exceeds the pixel limit")),
            "INVALID_ARGUMENT");
  EXPECT_EQ(ReasonOf(absl::InternalError("x")), "INTERNAL_ERROR");
  absl::Status renamed = util::WithMessage(source, "images[2]: no pixel, no limit");
  EXPECT_EQ(util::ErrorReasonOf(renamed), "IMAGE_TOO_LARGE");
  EXPECT_EQ(renamed.message(), "images[2]: no pixel, no limit");
}

TEST(ErrorModelTest, PreconditionFailureNamesItsSubject) {
  google::rpc::Status rpc = ToRpcStatus(
      FailedPrecondition("PROMPT_SET_NOT_LOADED", "promptSets/x", "promptSets/x is UNLOADED"));
  auto pf = Unpacked<google::rpc::PreconditionFailure>(rpc);
  ASSERT_EQ(pf.size(), 1u);
  EXPECT_EQ(pf[0].violations(0).type(), "PROMPT_SET_NOT_LOADED");
  EXPECT_EQ(pf[0].violations(0).subject(), "promptSets/x");
  EXPECT_TRUE(Unpacked<google::rpc::ResourceInfo>(rpc).empty());
}

}  // namespace
}  // namespace provp::server
