// EncodePng: what it writes decodes (with OpenCV, through core/image) to the
// same pixels, and inconsistent rasters are refused.
#include "core/builtin/raster.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/image/image_io.h"
#include "tests/testing/status_matchers.h"

namespace provp::builtin {
namespace {

using ::provp::testing::StatusIs;

TEST(EncodePngTest, RoundTripsThroughOpenCvDecoder) {
  Raster r(5, 7);
  for (size_t i = 0; i < r.rgb.size(); ++i) r.rgb[i] = static_cast<uint8_t>((i * 37) % 256);
  auto png = EncodePng(r);
  ASSERT_TRUE(png.ok()) << png.status();
  auto decoded = image::DecodeImage(*png);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->width, 7);
  EXPECT_EQ(decoded->height, 5);
  EXPECT_EQ(decoded->pixels, r.rgb);
}

TEST(EncodePngTest, RefusesInconsistentRaster) {
  Raster r(4, 4);
  r.rgb.pop_back();
  EXPECT_THAT(EncodePng(r).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodePng(Raster()).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::builtin
