// Safetensors reader/writer: round trips and hostile input. Every malformed
// file must give an error Status (never a crash or a huge allocation).
#include "core/clip/safetensors.h"

#include <cstdint>
#include <random>
#include <string>

#include <torch/torch.h>

#include "core/util/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::clip {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

std::string Le64(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

std::string File(const std::string& header, const std::string& data) {
  return Le64(header.size()) + header + data;
}

absl::Status ParseStatus(const std::string& bytes) {
  return ParseSafetensors(bytes, "test.safetensors").status();
}

TEST(SafetensorsTest, RoundTripsEveryDtypeAndMetadata) {
  std::map<std::string, torch::Tensor> tensors{
      {"f32", torch::randn({2, 3})},
      {"f16", torch::randn({4}).to(torch::kFloat16)},
      {"bf16", torch::randn({1, 2, 2}).to(torch::kBFloat16)},
      {"f64", torch::randn({3}, torch::kFloat64)},
      {"i64", torch::arange(5)},
      {"i32", torch::arange(3, torch::kInt32)},
      {"u8", torch::arange(7, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5f).reshape({})},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::randn({4, 6}).t()},
  };
  std::map<std::string, std::string> meta{{"backbone", "abc123"}, {"alpha", "0.01"}};
  auto bytes = SerializeSafetensors(tensors, meta);
  ASSERT_OK(bytes);
  auto parsed = ParseSafetensors(*bytes, "mem");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->metadata, meta);
  ASSERT_EQ(parsed->tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const torch::Tensor& got = parsed->tensors.at(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  // Data section is 8-byte aligned.
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<unsigned char>((*bytes)[i]);
  EXPECT_EQ(header_len % 8, 0u);
}

TEST(SafetensorsTest, WritesAtomicallyToDisk) {
  const std::string path = ::testing::TempDir() + "/clip_st_write_test.safetensors";
  std::map<std::string, torch::Tensor> tensors{{"p", torch::randn({2, 8, 16})}};
  ASSERT_OK(WriteSafetensors(path, tensors, {{"k", "v"}}));
  auto read = ReadSafetensors(path);
  ASSERT_OK(read);
  EXPECT_TRUE(torch::equal(read->tensors.at("p"), tensors.at("p")));
  EXPECT_EQ(read->metadata.at("k"), "v");
  EXPECT_THAT(ReadSafetensors(path + ".nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(SafetensorsTest, WriterRejectsBadNames) {
  EXPECT_FALSE(SerializeSafetensors({{"__metadata__", torch::zeros({1})}}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"", torch::zeros({1})}}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"undefined", torch::Tensor()}}).ok());
  EXPECT_FALSE(SerializeSafetensors({{"complex", torch::zeros({2}, torch::kComplexFloat)}}).ok());
}

TEST(SafetensorsTest, HostileHeadersAreErrors) {
  const std::string ok_entry = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_OK(ParseStatus(File(ok_entry, std::string(8, '\0'))));

  EXPECT_THAT(ParseStatus(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too short")));
  EXPECT_THAT(ParseStatus("1234567"), StatusIs(absl::StatusCode::kInvalidArgument));
  // Header length far past the file, and the maximum u64.
  EXPECT_THAT(ParseStatus(Le64(uint64_t{1} << 40) + "{}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header length")));
  EXPECT_THAT(ParseStatus(Le64(~uint64_t{0}) + "{}"), StatusIs(absl::StatusCode::kInvalidArgument));
  // Offsets past the end of the data section.
  EXPECT_THAT(ParseStatus(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                               std::string(8, 0))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the data section")));
  EXPECT_THAT(ParseStatus(File(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})",
                               std::string(8, 0))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Overlapping tensors.
  EXPECT_THAT(ParseStatus(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                               std::string(12, 0))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("overlap")));
  // shape x dtype size != byte span.
  EXPECT_THAT(ParseStatus(File(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})",
                               std::string(8, 0))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 4")));
  // Shape whose product overflows 64 bits.
  EXPECT_THAT(
      ParseStatus(
          File(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})",
               std::string(8, 0))),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("overflow")));
  EXPECT_THAT(ParseStatus(File(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                               std::string(8, 0))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseStatus(File(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})",
                               std::string(8, 0))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Unknown or unsupported dtypes.
  EXPECT_THAT(ParseStatus(File(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})",
                               std::string(8, 0))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unsupported dtype")));
  EXPECT_THAT(
      ParseStatus(File(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", std::string(8, 0))),
      StatusIs(absl::StatusCode::kInvalidArgument));
  // Missing fields, wrong kinds.
  EXPECT_FALSE(ParseStatus(File(R"({"a":{"dtype":"F32","shape":[2]}})", std::string(8, 0))).ok());
  EXPECT_FALSE(
      ParseStatus(File(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", std::string(8, 0))).ok());
  EXPECT_FALSE(ParseStatus(File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})",
                                std::string(8, 0)))
                   .ok());
  EXPECT_FALSE(ParseStatus(File(R"({"a":[1,2]})", "")).ok());
  EXPECT_FALSE(ParseStatus(File(R"({"__metadata__":{"k":1}})", "")).ok());
  EXPECT_FALSE(ParseStatus(File(R"({"__metadata__":"x"})", "")).ok());
  // Not JSON, not an object, too deep.
  EXPECT_THAT(ParseStatus(File("not json at all", "")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON")));
  EXPECT_FALSE(ParseStatus(File("[1,2,3]", "")).ok());
  EXPECT_FALSE(ParseStatus(File(R"({"a":)", "")).ok());
  EXPECT_FALSE(ParseStatus(File(std::string(200000, '[') + std::string(200000, ']'), "")).ok());
  EXPECT_FALSE(ParseStatus(File("{\"a\":" + std::string(100000, '{'), "")).ok());
}

TEST(SafetensorsTest, RandomBytesNeverCrash) {
  std::mt19937_64 rng(42);
  int errors = 0;
  for (int i = 0; i < 300; ++i) {
    std::string bytes(rng() % 512, '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng());
    // Half of them get a plausible small header length.
    if (i % 2 == 0 && bytes.size() >= 8) {
      const uint64_t len = rng() % (bytes.size() - 7);
      bytes.replace(0, 8, Le64(len));
      if (bytes.size() > 8) bytes[8] = '{';
    }
    if (!ParseSafetensors(bytes, "random").ok()) ++errors;
  }
  EXPECT_GT(errors, 290);
}

class FixtureSafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bytes = util::ReadFile(provp::testing::SharedDir() + "/fixtures/tiny/openai.safetensors");
    ASSERT_OK(bytes);
    bytes_ = *bytes;
  }
  std::string bytes_;
};

TEST_F(FixtureSafetensorsTest, ParsesTheFixture) {
  auto parsed = ParseSafetensors(bytes_, "fixture");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->tensors.size(), 62u);
  EXPECT_EQ(parsed->metadata.at("naming"), "openai");
  EXPECT_EQ(parsed->tensors.at("visual.conv1.weight").sizes(),
            (std::vector<int64_t>{128, 3, 8, 8}));
  EXPECT_EQ(parsed->tensors.at("logit_scale").dim(), 0);
}

TEST_F(FixtureSafetensorsTest, TruncatedCopiesAreErrors) {
  for (size_t cut : {size_t{0}, size_t{4}, size_t{8}, size_t{100}, size_t{6359}, size_t{6360},
                     size_t{10000}, bytes_.size() / 2, bytes_.size() - 1}) {
    EXPECT_FALSE(ParseSafetensors(bytes_.substr(0, cut), "truncated").ok()) << cut;
  }
}

TEST_F(FixtureSafetensorsTest, BitFlippedHeadersNeverCrash) {
  std::mt19937_64 rng(7);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i)
    header_len = (header_len << 8) | static_cast<unsigned char>(bytes_[i]);
  int ok = 0;
  for (int i = 0; i < 150; ++i) {
    std::string copy = bytes_;
    const size_t pos = rng() % (8 + header_len);
    copy[pos] = static_cast<char>(copy[pos] ^ (1 << (rng() % 8)));
    auto parsed = ParseSafetensors(copy, "flipped");
    if (parsed.ok()) {
      ++ok;
      // Whatever parses must be self-consistent.
      for (const auto& [name, t] : parsed->tensors) EXPECT_TRUE(t.defined()) << name;
    }
  }
  // Many flips hit digits or names and stay valid; most break the structure.
  EXPECT_LT(ok, 150);
}

}  // namespace
}  // namespace provp::clip
