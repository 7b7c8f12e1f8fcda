// The Fashion-MNIST reader on the installed Debian dataset and on broken
// files, plus captions and rendering of items.
#include "core/builtin/fashion_mnist.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace provp::builtin {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

bool HaveDataset() {
  return std::filesystem::exists(std::string(kDefaultFashionMnistDir) +
                                 "/t10k-images-idx3-ubyte.gz");
}

std::string TempDir(const std::string& name) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("provp_builtin_fmnist_" + name)).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string U32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

TEST(FashionMnistTest, ReadsTheInstalledTestSplit) {
  if (!HaveDataset()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto data = LoadFashionMnist(kDefaultFashionMnistDir, /*train=*/false);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 10000);
  EXPECT_EQ(data->rows, 28);
  EXPECT_EQ(data->cols, 28);
  std::vector<int> per_class(10, 0);
  for (uint8_t l : data->labels) ++per_class[l];
  for (int c : per_class) EXPECT_EQ(c, 1000);
  // Real images: some ink, mostly background at the corners.
  int ink = 0;
  for (int i = 0; i < 28 * 28; ++i) ink += data->image(0)[i] > 0;
  EXPECT_GT(ink, 100);
  EXPECT_EQ(data->image(0)[0], 0);
}

TEST(FashionMnistTest, MaxItemsLimitsTheRead) {
  if (!HaveDataset()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto data = LoadFashionMnist(kDefaultFashionMnistDir, /*train=*/true, 100);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 100);
  EXPECT_EQ(data->pixels.size(), 100u * 28 * 28);
}

TEST(FashionMnistTest, PlainFilesWithSmallHeadersLoad) {
  const std::string dir = TempDir("plain");
  WriteBytes(
      dir + "/t10k-images-idx3-ubyte",
      U32(2051) + U32(2) + U32(2) + U32(2) + std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  WriteBytes(dir + "/t10k-labels-idx1-ubyte", U32(2049) + U32(2) + std::string("\x03\x09", 2));
  auto data = LoadFashionMnist(dir, false);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 2);
  EXPECT_EQ(data->labels[1], 9);
  EXPECT_EQ(data->image(1)[3], 8);
}

TEST(FashionMnistTest, BrokenFilesAreErrorsNamingTheFile) {
  const std::string dir = TempDir("broken");
  EXPECT_THAT(LoadFashionMnist(dir, false).status(), StatusIs(absl::StatusCode::kNotFound));

  WriteBytes(dir + "/t10k-images-idx3-ubyte", U32(1234) + U32(1) + U32(2) + U32(2) + "abcd");
  WriteBytes(dir + "/t10k-labels-idx1-ubyte", U32(2049) + U32(1) + std::string(1, '\0'));
  auto bad_magic = LoadFashionMnist(dir, false);
  EXPECT_THAT(bad_magic.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(bad_magic.status().message()), HasSubstr("t10k-images-idx3-ubyte"));

  // A header claiming a huge count must not allocate it.
  WriteBytes(dir + "/t10k-images-idx3-ubyte", U32(2051) + U32(0x7fffffff) + U32(28) + U32(28));
  EXPECT_THAT(LoadFashionMnist(dir, false).status(), StatusIs(absl::StatusCode::kInvalidArgument));

  // Truncated pixel data.
  WriteBytes(dir + "/t10k-images-idx3-ubyte", U32(2051) + U32(1) + U32(2) + U32(2) + "ab");
  EXPECT_THAT(LoadFashionMnist(dir, false).status(), StatusIs(absl::StatusCode::kDataLoss));

  // Label count mismatch and out-of-range labels.
  WriteBytes(dir + "/t10k-images-idx3-ubyte", U32(2051) + U32(1) + U32(2) + U32(2) + "abcd");
  WriteBytes(dir + "/t10k-labels-idx1-ubyte", U32(2049) + U32(2) + std::string(2, '\0'));
  EXPECT_THAT(LoadFashionMnist(dir, false).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  WriteBytes(dir + "/t10k-labels-idx1-ubyte", U32(2049) + U32(1) + std::string(1, '\x0c'));
  EXPECT_THAT(LoadFashionMnist(dir, false).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FashionMnistTest, CaptionsNameTheClass) {
  Random rng(1);
  const std::vector<std::string> names = FashionClassNames();
  ASSERT_EQ(names.size(), 10u);
  for (int i = 0; i < 200; ++i) {
    const int label = i % 10;
    EXPECT_THAT(FashionCaption(label, rng), HasSubstr(names[label]));
  }
}

TEST(FashionMnistTest, ShiftedRenderingColoursTheItem) {
  std::vector<uint8_t> item(28 * 28, 0);
  for (int y = 6; y < 22; ++y) {
    for (int x = 10; x < 18; ++x) item[y * 28 + x] = 255;
  }
  Random a(2);
  const Raster plain = RenderFashion(item.data(), 28, 28, 32, RenderStyle::kPretrain, a);
  EXPECT_EQ(plain.height, 32);
  // Pretraining style is grey: R == G == B everywhere, black corners.
  for (size_t i = 0; i < plain.rgb.size(); i += 3) {
    ASSERT_EQ(plain.rgb[i], plain.rgb[i + 1]);
    ASSERT_EQ(plain.rgb[i], plain.rgb[i + 2]);
  }
  EXPECT_EQ(plain.at(0, 0)[0], 0);
  EXPECT_GT(plain.at(16, 16)[0], 200);
  // Shifted style: tinted item and background. Random colours can come out
  // greyish, so count over several draws.
  int coloured = 0;
  for (int seed = 0; seed < 10; ++seed) {
    Random c(100 + seed);
    const Raster shifted = RenderFashion(item.data(), 28, 28, 32, RenderStyle::kShifted, c);
    for (size_t i = 0; i < shifted.rgb.size(); i += 3) {
      coloured += std::abs(shifted.rgb[i] - shifted.rgb[i + 1]) > 20 ||
                  std::abs(shifted.rgb[i] - shifted.rgb[i + 2]) > 20;
    }
  }
  EXPECT_GT(coloured, 10 * 32 * 32 / 4);
}

}  // namespace
}  // namespace provp::builtin
