// Request images into RGB: raw layouts (gray, RGB, BGR, RGBA), the pixel
// budget before any work, and per-image errors that name their field.
#include "server/state/request_images.h"

#include "core/image/image_io.h"
#include "gtest/gtest.h"
#include "server/state/errors.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;

v1::Image Raw(int h, int w, int c, std::string data, bool bgr = false) {
  v1::Image img;
  img.mutable_raw()->set_height(h);
  img.mutable_raw()->set_width(w);
  img.mutable_raw()->set_channels(c);
  img.mutable_raw()->set_data(std::move(data));
  if (bgr) img.mutable_raw()->set_channel_order(v1::RawImage::BGR);
  return img;
}

TEST(RequestImagesTest, RawLayoutsBecomeRgb) {
  Limits limits;
  auto gray = DecodeRequestImage(Raw(1, 2, 1, "\x10\x20"), limits, "images[0]");
  ASSERT_OK(gray);
  EXPECT_EQ(gray->rgb, (std::vector<uint8_t>{0x10, 0x10, 0x10, 0x20, 0x20, 0x20}));
  auto bgr = DecodeRequestImage(Raw(1, 1, 3, "\x01\x02\x03", true), limits, "images[0]");
  ASSERT_OK(bgr);
  EXPECT_EQ(bgr->rgb, (std::vector<uint8_t>{3, 2, 1}));
  auto rgba = DecodeRequestImage(Raw(1, 1, 4, "\x01\x02\x03\x04"), limits, "images[0]");
  ASSERT_OK(rgba);
  EXPECT_EQ(rgba->rgb, (std::vector<uint8_t>{1, 2, 3}));
  auto short_data = DecodeRequestImage(Raw(2, 2, 3, "abc"), limits, "images[4]");
  EXPECT_EQ(ReasonOf(short_data.status()), "INVALID_RAW_IMAGE");
  EXPECT_NE(short_data.status().message().find("images[4].raw.data"), std::string::npos);
}

TEST(RequestImagesTest, PixelBudgetIsImageTooLargeForBothForms) {
  Limits limits;
  limits.max_pixels_per_image = 3;
  EXPECT_EQ(ReasonOf(DecodeRequestImage(Raw(2, 2, 1, "abcd"), limits, "images[0]").status()),
            "IMAGE_TOO_LARGE");
  image::RgbImage rgb{2, 2, std::vector<uint8_t>(12, 7)};
  auto png = image::EncodePng(rgb);
  ASSERT_OK(png);
  v1::Image encoded;
  encoded.set_encoded(*png);
  auto decoded = DecodeRequestImage(encoded, limits, "images[1]");
  EXPECT_THAT(decoded, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ReasonOf(decoded.status()), "IMAGE_TOO_LARGE");
  v1::Image junk;
  junk.set_encoded("junk");
  EXPECT_EQ(ReasonOf(DecodeRequestImage(junk, limits, "images[2]").status()),
            "IMAGE_DECODE_FAILED");
  EXPECT_EQ(ReasonOf(DecodeRequestImage(v1::Image(), limits, "images[3]").status()), "EMPTY_IMAGE");
}

}  // namespace
}  // namespace provp::server
