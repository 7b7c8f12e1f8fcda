// Error model: reasons and details survive the edge conversion into the
// google.rpc.Status trailer; INTERNAL messages are not leaked.
#include "server/status_conversion.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "server/state/errors.h"

namespace provp::server {
namespace {

google::rpc::Status Details(const grpc::Status& s) {
  google::rpc::Status rpc;
  EXPECT_TRUE(rpc.ParseFromString(s.error_details()));
  return rpc;
}

TEST(ErrorsTest, InvalidArgumentCarriesReasonAndFieldViolation) {
  grpc::Status s =
      ToGrpcStatus(InvalidArgument("IMAGE_DECODE_FAILED", "bad jpeg", "images[3].encoded"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "bad jpeg");
  google::rpc::Status rpc = Details(s);
  EXPECT_EQ(rpc.code(), 3);
  bool info = false, bad = false;
  for (const auto& any : rpc.details()) {
    google::rpc::ErrorInfo ei;
    google::rpc::BadRequest br;
    if (any.UnpackTo(&ei)) {
      info = true;
      EXPECT_EQ(ei.reason(), "IMAGE_DECODE_FAILED");
      EXPECT_EQ(ei.domain(), kErrorDomain);
    } else if (any.UnpackTo(&br)) {
      bad = true;
      ASSERT_EQ(br.field_violations_size(), 1);
      EXPECT_EQ(br.field_violations(0).field(), "images[3].encoded");
    }
  }
  EXPECT_TRUE(info);
  EXPECT_TRUE(bad);
}

TEST(ErrorsTest, QuotaAndRetryDetails) {
  google::rpc::Status rpc =
      ToRpcStatus(ResourceExhausted("QUEUE_FULL", "inference_queue", "full", 250));
  bool quota = false, retry = false;
  for (const auto& any : rpc.details()) {
    google::rpc::QuotaFailure qf;
    google::rpc::RetryInfo ri;
    if (any.UnpackTo(&qf)) {
      quota = true;
      EXPECT_EQ(qf.violations(0).subject(), "inference_queue");
    } else if (any.UnpackTo(&ri)) {
      retry = true;
      EXPECT_EQ(ri.retry_delay().nanos(), 250000000);
    }
  }
  EXPECT_TRUE(quota);
  EXPECT_TRUE(retry);
}

TEST(ErrorsTest, NotFoundHasResourceInfo) {
  google::rpc::Status rpc = ToRpcStatus(NotFound("provp.v1.PromptSet", "promptSets/x"));
  bool found = false;
  for (const auto& any : rpc.details()) {
    google::rpc::ResourceInfo ri;
    if (any.UnpackTo(&ri)) {
      found = true;
      EXPECT_EQ(ri.resource_name(), "promptSets/x");
    }
  }
  EXPECT_TRUE(found);
}

TEST(ErrorsTest, InternalMessageIsHiddenAndDefaultReasonSet) {
  grpc::Status s = ToGrpcStatus(absl::InternalError("c10 error at /src/foo.cpp:12 secret"), "rid1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(s.error_message().find("secret"), std::string::npos);
  EXPECT_NE(s.error_message().find("rid1"), std::string::npos);
  EXPECT_EQ(ReasonOf(absl::InternalError("x")), "INTERNAL_ERROR");
  EXPECT_EQ(ReasonOf(WithReason(absl::InternalError("x"), "INFERENCE_FAILED")), "INFERENCE_FAILED");
  EXPECT_EQ(ReasonOf(absl::NotFoundError("x")), "NOT_FOUND");
  EXPECT_EQ(ReasonOf(absl::OkStatus()), "");
}

}  // namespace
}  // namespace provp::server
