// Parity of DecodeImageFile + PreprocessForEval with the reference pipeline
// (PIL decode, torchvision Resize/CenterCrop, CLIP normalisation). Data
// driven: every directory in PROVP_PREPROCESS_FIXTURES (colon-separated,
// default <shared>/fixtures/preprocess) holds preprocess_cases.json and
// preprocess_reference.safetensors. Tolerances from fixtures/README.md.
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/image/image_io.h"
#include "core/image/preprocess.h"
#include "core/util/file_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

namespace provp::image {
namespace {

constexpr double kMaxMeanAbsDiff = 0.01;
constexpr double kMaxAbsDiff = 0.3;

// Just enough safetensors to read the fixture's F32 tensors: an 8-byte
// little-endian header length, a JSON header, then raw data. Kept local so
// this test does not depend on the CLIP loader's reader.
class SafetensorsFile {
 public:
  static absl::StatusOr<SafetensorsFile> Open(const std::string& path) {
    absl::StatusOr<std::string> bytes = util::ReadFile(path, uint64_t{1} << 30);
    if (!bytes.ok()) return bytes.status();
    SafetensorsFile f;
    f.path_ = path;
    f.bytes_ = std::move(*bytes);
    if (f.bytes_.size() < 8) return absl::InvalidArgumentError(path + ": shorter than 8 bytes");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(f.bytes_[i]);
    if (header_len > f.bytes_.size() - 8) {
      return absl::InvalidArgumentError(path + ": header length past end of file");
    }
    f.header_ = nlohmann::json::parse(f.bytes_.begin() + 8, f.bytes_.begin() + 8 + header_len,
                                      nullptr, /*allow_exceptions=*/false);
    if (!f.header_.is_object()) return absl::InvalidArgumentError(path + ": bad JSON header");
    f.data_start_ = 8 + header_len;
    return f;
  }

  absl::StatusOr<torch::Tensor> Float32(const std::string& name) const {
    auto it = header_.find(name);
    if (it == header_.end()) return absl::NotFoundError(absl::StrCat(path_, ": no tensor ", name));
    const nlohmann::json& e = *it;
    if (!e.is_object() || e.value("dtype", "") != "F32" || !e.contains("shape") ||
        !e["shape"].is_array() || !e.contains("data_offsets") || e["data_offsets"].size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": tensor ", name, " is not a F32 entry"));
    }
    std::vector<int64_t> shape;
    int64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) return absl::InvalidArgumentError(name + ": bad shape");
      shape.push_back(d.get<int64_t>());
      numel *= shape.back();
    }
    const uint64_t begin = e["data_offsets"][0].get<uint64_t>();
    const uint64_t end = e["data_offsets"][1].get<uint64_t>();
    if (begin > end || end > bytes_.size() - data_start_ ||
        end - begin != static_cast<uint64_t>(numel) * 4) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor ", name, " has bad offsets"));
    }
    torch::Tensor t = torch::empty(shape, torch::kFloat);
    std::memcpy(t.data_ptr<float>(), bytes_.data() + data_start_ + begin, end - begin);
    return t;
  }

 private:
  std::string path_;
  std::string bytes_;
  nlohmann::json header_;
  uint64_t data_start_ = 0;
};

torch::Tensor ToTensor(const RgbImage& img) {
  return torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3},
                          torch::kUInt8)
      .clone();
}

void CheckDirectory(const std::string& dir) {
  SCOPED_TRACE("fixture directory " + dir);
  absl::StatusOr<std::string> cases_text = util::ReadFile(dir + "/preprocess_cases.json");
  ASSERT_OK(cases_text.status());
  const nlohmann::json cases = nlohmann::json::parse(*cases_text, nullptr, false);
  ASSERT_TRUE(cases.is_object() && cases.contains("cases")) << dir << ": bad preprocess_cases.json";
  ASSERT_EQ(cases["mean"].size(), 3u);
  ASSERT_EQ(cases["std"].size(), 3u);
  Normalization norm;
  for (int c = 0; c < 3; ++c) {
    norm.mean[c] = cases["mean"][c].get<double>();
    norm.std[c] = cases["std"][c].get<double>();
  }
  absl::StatusOr<SafetensorsFile> ref =
      SafetensorsFile::Open(dir + "/preprocess_reference.safetensors");
  ASSERT_OK(ref.status());
  ASSERT_FALSE(cases["cases"].empty());

  for (const nlohmann::json& c : cases["cases"]) {
    const std::string file = c.at("file").get<std::string>();
    SCOPED_TRACE("case " + file);
    const int64_t size = c.at("size").get<int64_t>();
    absl::StatusOr<RgbImage> img = DecodeImageFile(dir + "/" + file);
    ASSERT_OK(img.status());
    EXPECT_EQ(img->width, c.at("width").get<int>());
    EXPECT_EQ(img->height, c.at("height").get<int>());
    absl::StatusOr<torch::Tensor> ours = PreprocessForEval(ToTensor(*img), size, norm);
    ASSERT_OK(ours.status());
    absl::StatusOr<torch::Tensor> want = ref->Float32(c.at("tensor").get<std::string>());
    ASSERT_OK(want.status());
    ASSERT_EQ(ours->sizes(), want->sizes());
    const torch::Tensor diff = (*ours - *want).abs();
    const double mean = diff.mean().item<double>();
    const double max = diff.max().item<double>();
    std::cout << "[parity] " << file << " size " << size << ": mean |diff| " << mean
              << ", max |diff| " << max << "\n";
    if (c.value("mode", "") == "RGBA") continue;  // reference resizes before dropping alpha
    EXPECT_LE(mean, kMaxMeanAbsDiff);
    EXPECT_LE(max, kMaxAbsDiff);
  }
}

TEST(PreprocessParityTest, MatchesReferenceForEveryFixtureDirectory) {
  const std::vector<std::string> dirs = provp::testing::DirsFromEnv(
      "PROVP_PREPROCESS_FIXTURES", provp::testing::SharedDir() + "/fixtures/preprocess");
  ASSERT_FALSE(dirs.empty());
  for (const std::string& dir : dirs) CheckDirectory(dir);
}

}  // namespace
}  // namespace provp::image
