// request_parser (issue 14): a request that does not parse is
// INVALID_ARGUMENT MALFORMED_MESSAGE naming the field - invalid UTF-8,
// truncation, wrong and invalid wire types, bad tags and groups, nesting -
// while well-formed bytes (unknown fields, packed or unpacked repeated
// scalars) parse exactly as protobuf parses them. A seeded mutation sweep
// checks that the wire check never accepts what protobuf refuses.
#include "server/state/request_parser.h"

#include <random>
#include <string>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/message_differencer.h>

#include "absl/strings/escaping.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "provp/v1/classification.pb.h"
#include "provp/v1/dataset.pb.h"
#include "provp/v1/tuning.pb.h"
#include "server/state/errors.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wire_format.h"

namespace provp::server {
namespace {

using ::provp::testing::wire::Len;
using ::provp::testing::wire::Tag;
using ::provp::testing::wire::Varint;

std::string FieldOf(const absl::Status& s) {
  auto br = DetailOf<google::rpc::BadRequest>(s);
  return br && br->field_violations_size() > 0 ? br->field_violations(0).field() : "";
}

void ExpectMalformed(const absl::Status& s, const std::string& field, const std::string& words) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(ReasonOf(s), kReasonMalformedMessage) << s;
  EXPECT_EQ(FieldOf(s), field) << s;
  EXPECT_NE(s.message().find(words), absl::string_view::npos) << s;
}

v1::ClassifyRequest SampleRequest() {
  v1::ClassifyRequest req;
  req.set_prompt_set("promptSets/p1");
  req.mutable_inline_classes()->add_names("dog");
  req.mutable_inline_classes()->add_names("cat");
  req.add_templates("a photo of a {}.");
  req.add_images()->set_encoded(std::string(40, '\x89'));
  req.add_images()->set_encoded("PNG");
  req.set_top_k(3);
  req.set_request_id("r-1");
  return req;
}

TEST(RequestParserTest, WellFormedBytesParseAsProtobufParsesThem) {
  const v1::ClassifyRequest want = SampleRequest();
  v1::ClassifyRequest got;
  ASSERT_OK(ParseRequest(want.SerializeAsString(), &got));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(want, got));
  // The empty message, and a field of an unknown number of each wire type
  // (newer clients), are accepted; the unknown fields are kept.
  ASSERT_OK(ParseRequest("", &got));
  const std::string unknown = Tag(99, 0) + Varint(300) + Tag(98, 1) + std::string(8, 'x') +
                              Len(97, "abc") + Tag(96, 3) + Tag(1, 0) + Varint(1) + Tag(96, 4) +
                              Tag(95, 5) + std::string(4, 'y');
  ASSERT_OK(ParseRequest(want.SerializeAsString() + unknown, &got));
  EXPECT_EQ(got.request_id(), "r-1");
  EXPECT_EQ(got.GetReflection()->GetUnknownFields(got).field_count(), 5);
}

TEST(RequestParserTest, RepeatedScalarsPackedOrNot) {
  v1::DatasetStats stats;
  const std::string packed = Len(5, Varint(3) + Varint(300) + Varint(1));
  ASSERT_OK(ParseRequest(packed + Tag(5, 0) + Varint(7), &stats));
  ASSERT_EQ(stats.train_images_per_class_size(), 4);
  EXPECT_EQ(stats.train_images_per_class(1), 300);
  EXPECT_EQ(stats.train_images_per_class(3), 7);
  // A packed run that stops inside a value.
  ExpectMalformed(ParseRequest(Len(5, Varint(3) + "\x80"), &stats), "train_images_per_class",
                  "truncated");
  // Packed floats must be whole.
  v1::Embedding emb;
  ExpectMalformed(ParseRequest(Len(1, std::string(6, '\0')), &emb), "values", "truncated");
  ASSERT_OK(ParseRequest(Len(1, std::string(8, '\0')), &emb));
  EXPECT_EQ(emb.values_size(), 2);
}

TEST(RequestParserTest, InvalidUtf8NamesTheField) {
  // The black-box finding: inline_classes.names holds "ca\xff\xfet".
  const std::string bytes = Len(3, Len(1, "dog") + Len(1, "ca\xff\xfet"));
  v1::ClassifyRequest req;
  absl::Status s = ParseRequest(bytes, &req);
  ExpectMalformed(s, "inline_classes.names[1]", "not valid UTF-8");
  EXPECT_EQ(s.message(), "inline_classes.names[1]: not valid UTF-8");
  // Deeper and in other string fields: images[1].uri, templates[0].
  ExpectMalformed(ParseRequest(Len(5, Len(1, "x")) + Len(5, Len(3, "\xc0\xaf")), &req),
                  "images[1].uri", "UTF-8");
  ExpectMalformed(ParseRequest(Len(4, "\xed\xa0\x80{}"), &req), "templates[0]", "UTF-8");
  // Map keys and values (tuning_job.labels is map<string, string>).
  v1::CreateTuningJobRequest job;
  const auto* labels = v1::TuningJob::descriptor()->FindFieldByName("labels");
  const auto* tuning_job = v1::CreateTuningJobRequest::descriptor()->FindFieldByName("tuning_job");
  ASSERT_NE(labels, nullptr);
  ASSERT_NE(tuning_job, nullptr);
  const std::string entry = Len(1, "team") + Len(2, "v\xff");
  ExpectMalformed(ParseRequest(Len(tuning_job->number(), Len(labels->number(), entry)), &job),
                  "tuning_job.labels[0].value", "UTF-8");
  // bytes fields hold anything.
  ASSERT_OK(ParseRequest(Len(5, Len(1, "\xff\xfe\x00\x01")), &req));
}

TEST(RequestParserTest, TruncatedMessagesNameWhereTheyStop) {
  const std::string full = SampleRequest().SerializeAsString();
  v1::ClassifyRequest req;
  for (size_t cut = 1; cut < full.size(); ++cut) {
    absl::Status s = ParseRequest(full.substr(0, cut), &req);
    // Some prefixes end exactly between two fields and are whole messages.
    if (s.ok()) continue;
    EXPECT_EQ(ReasonOf(s), kReasonMalformedMessage) << cut;
  }
  // A length past the end names its field; a torn tag names the message.
  ExpectMalformed(ParseRequest(Len(1, "promptSets/p1").substr(0, 6), &req), "prompt_set",
                  "runs past the end");
  ExpectMalformed(ParseRequest(Len(5, Len(1, std::string(20, 'x'))).substr(0, 12), &req),
                  "images[0]", "runs past the end");
  ExpectMalformed(ParseRequest(Tag(6, 0) + "\x80", &req), "top_k", "truncated");
  ExpectMalformed(ParseRequest(Len(1, "p") + "\x80", &req), "", "field tag");
}

TEST(RequestParserTest, WrongWireTypesAreRefused) {
  v1::ClassifyRequest req;
  // images (a message) sent as a varint: protobuf would keep it as an
  // unknown field and the request would silently have no images.
  ExpectMalformed(ParseRequest(Tag(5, 0) + Varint(1), &req), "images[0]",
                  "wire type VARINT; a message field takes LEN");
  ExpectMalformed(ParseRequest(Len(6, "\x03"), &req), "top_k", "wire type LEN");
  ExpectMalformed(ParseRequest(Tag(1, 5) + "abcd", &req), "prompt_set", "wire type I32");
  ExpectMalformed(ParseRequest(Len(3, Tag(1, 1) + "12345678"), &req), "inline_classes.names[0]",
                  "wire type I64");
  // Wire types 6 and 7 do not exist.
  ExpectMalformed(ParseRequest(Tag(7, 7), &req), "return_all_scores", "invalid wire type 7");
  ExpectMalformed(ParseRequest(Tag(50, 6), &req), "", "invalid wire type 6");
}

TEST(RequestParserTest, BadTagsGroupsAndNesting) {
  v1::ClassifyRequest req;
  ExpectMalformed(ParseRequest(Tag(0, 2) + Varint(0), &req), "", "field number 0");
  ExpectMalformed(ParseRequest(Tag(0, 0) + Varint(1), &req), "", "field tag");
  ExpectMalformed(ParseRequest(Tag(40, 4), &req), "", "end of group 40");
  ExpectMalformed(ParseRequest(Tag(40, 3) + Tag(41, 0) + Varint(1), &req), "", "not closed");
  ExpectMalformed(ParseRequest(Tag(40, 3) + Tag(41, 4), &req), "", "end of group 41");
  ExpectMalformed(ParseRequest(std::string(11, '\xff'), &req), "", "field tag");
  // Nesting: google.protobuf.Value holds a ListValue of Values.
  auto nest = [](int levels) {
    std::string v = Tag(4, 0) + Varint(1);  // bool_value
    for (int i = 0; i < levels; ++i) v = Len(6, Len(1, v));
    return v;
  };
  google::protobuf::Value value;
  ASSERT_OK(ParseRequest(nest(kMaxMessageDepth / 2), &value));
  // The 101st level is the 51st list_value, below 50 list_value.values[0].
  std::string field;
  for (int i = 0; i < kMaxMessageDepth / 2; ++i) field += "list_value.values[0].";
  ExpectMalformed(ParseRequest(nest(kMaxMessageDepth / 2 + 1), &value), field + "list_value",
                  "nested deeper than 100");
}

TEST(RequestParserTest, Utf8Validation) {
  for (const char* ok : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x90\xb6",
                         "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"}) {
    EXPECT_TRUE(IsValidUtf8(ok)) << ok;
  }
  for (const char* bad : {"ca\xff\xfet", "\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf",
                          "\xed\xa0\x80", "\xf0\x80\x80\xaf", "\xf4\x90\x80\x80",
                          "\xf5\x80\x80\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x90", "\xe2\x28\xa1"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
  }
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
}

// Whatever the wire check accepts, protobuf parses (the safety net in
// ParseRequest stays unused), and whatever protobuf refuses, the check
// refuses first with the field named where it can be.
TEST(RequestParserTest, MutationsNeverPassTheCheckButFailProtobuf) {
  const std::string base = SampleRequest().SerializeAsString();
  std::mt19937 rng(14);
  int refused = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string bytes = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes.erase(at, 1 + rng() % 3);
          break;
        default:
          bytes.insert(at, 1, static_cast<char>(rng()));
      }
      if (bytes.empty()) bytes = "x";
    }
    v1::ClassifyRequest req;
    absl::Status s = ParseRequest(bytes, &req);
    if (!s.ok()) {
      ++refused;
      ASSERT_EQ(ReasonOf(s), kReasonMalformedMessage);
      ASSERT_EQ(s.message().find("does not parse as"), absl::string_view::npos)
          << s << " " << absl::BytesToHexString(bytes);
    }
  }
  EXPECT_GT(refused, 10000);
}

}  // namespace
}  // namespace provp::server
