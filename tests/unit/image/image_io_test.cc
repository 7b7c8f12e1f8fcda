// Unit tests of image decoding/encoding: round trips for every accepted
// format, colour/depth conversions, the header size probe and pixel budget,
// and robustness against random, truncated and bit-flipped input (errors or
// valid images, never a crash or a hang).
#include "core/image/image_io.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "core/util/error_reason.h"
#include "core/util/file_util.h"
#include "tests/testing/status_matchers.h"

namespace provp::image {
namespace {

using ::provp::testing::IsOk;
using ::provp::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A deterministic test picture: smooth gradients plus some noise, so JPEG
// stays close and every channel differs.
RgbImage MakeImage(int width, int height, uint32_t seed = 1) {
  RgbImage img;
  img.width = width;
  img.height = height;
  img.pixels.resize(size_t(width) * height * 3);
  std::mt19937 rng(seed);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &img.pixels[(size_t(y) * width + x) * 3];
      p[0] = uint8_t(x * 255 / std::max(1, width - 1));
      p[1] = uint8_t(y * 255 / std::max(1, height - 1));
      p[2] = uint8_t(128 + int(rng() % 9) - 4);
    }
  }
  return img;
}

std::string CvEncode(const cv::Mat& mat, const std::string& ext,
                     const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, mat, buf, params)) << ext;
  return std::string(buf.begin(), buf.end());
}

// The RGB image as an OpenCV BGR matrix (for encoding test inputs).
cv::Mat ToBgr(const RgbImage& img) {
  cv::Mat bgr(img.height, img.width, CV_8UC3);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = &img.pixels[(size_t(y) * img.width + x) * 3];
      bgr.at<cv::Vec3b>(y, x) = cv::Vec3b(p[2], p[1], p[0]);
    }
  }
  return bgr;
}

double MeanAbsDiff(const RgbImage& a, const RgbImage& b) {
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return sum / double(a.pixels.size());
}

void AppendBe32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(char((v >> shift) & 0xFF));
}
// Little-endian v in `bytes` bytes; bytes past the 4th are zero padding.
void AppendLe(std::string& s, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(i < 4 ? char((v >> (8 * i)) & 0xFF) : '\0');
}

// A PNG chunk with a correct CRC, so only the size can make it invalid.
void AppendPngChunk(std::string& png, const char type[4], const std::string& data) {
  AppendBe32(png, uint32_t(data.size()));
  std::string body = std::string(type, 4) + data;
  png += body;
  AppendBe32(png,
             uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))));
}

std::string PngWithHeaderSize(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  AppendBe32(ihdr, width);
  AppendBe32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, no interlace
  AppendPngChunk(png, "IHDR", ihdr);
  AppendPngChunk(png, "IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8));
  AppendPngChunk(png, "IEND", "");
  return png;
}

TEST(ImageIoTest, PngRoundTripIsExact) {
  const RgbImage img = MakeImage(37, 23);
  absl::StatusOr<std::string> png = EncodePng(img);
  ASSERT_OK(png.status());
  absl::StatusOr<RgbImage> back = DecodeImage(*png);
  ASSERT_OK(back.status());
  EXPECT_EQ(back->width, 37);
  EXPECT_EQ(back->height, 23);
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(ImageIoTest, JpegRoundTripIsClose) {
  const RgbImage img = MakeImage(64, 40);
  absl::StatusOr<std::string> jpg = EncodeJpeg(img, 95);
  ASSERT_OK(jpg.status());
  absl::StatusOr<ImageInfo> info = ProbeImage(*jpg);
  ASSERT_OK(info.status());
  EXPECT_EQ(info->format, ImageFormat::kJpeg);
  absl::StatusOr<RgbImage> back = DecodeImage(*jpg);
  ASSERT_OK(back.status());
  ASSERT_EQ(back->width, 64);
  ASSERT_EQ(back->height, 40);
  EXPECT_LT(MeanAbsDiff(*back, img), 4.0);
  // Red runs left to right: channel order must survive the BGR round trip.
  EXPECT_LT(back->pixels[0], 40);
  EXPECT_GT(back->pixels[(64 - 1) * 3], 215);
}

TEST(ImageIoTest, EncodeRejectsBadInput) {
  RgbImage img = MakeImage(4, 4);
  img.pixels.pop_back();
  EXPECT_THAT(EncodePng(img), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("47 bytes")));
  EXPECT_THAT(EncodePng(RgbImage{}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeJpeg(MakeImage(4, 4), 101),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("quality")));
}

TEST(ImageIoTest, GrayscalePngBecomesRgb) {
  cv::Mat gray(5, 7, CV_8UC1);
  for (int i = 0; i < 35; ++i) gray.data[i] = uint8_t(i * 7);
  absl::StatusOr<RgbImage> img = DecodeImage(CvEncode(gray, ".png"));
  ASSERT_OK(img.status());
  ASSERT_EQ(img->width, 7);
  ASSERT_EQ(img->height, 5);
  for (int i = 0; i < 35; ++i) {
    EXPECT_EQ(img->pixels[i * 3 + 0], i * 7);
    EXPECT_EQ(img->pixels[i * 3 + 1], i * 7);
    EXPECT_EQ(img->pixels[i * 3 + 2], i * 7);
  }
}

TEST(ImageIoTest, RgbaPngDropsAlphaWithoutPremultiplying) {
  cv::Mat bgra(3, 4, CV_8UC4);
  for (int i = 0; i < 12; ++i) {
    bgra.at<cv::Vec4b>(i / 4, i % 4) =
        cv::Vec4b(uint8_t(10 + i), uint8_t(100 + i), uint8_t(200 + i),
                  uint8_t(i * 20));  // B, G, R, alpha
  }
  absl::StatusOr<RgbImage> img = DecodeImage(CvEncode(bgra, ".png"));
  ASSERT_OK(img.status());
  ASSERT_EQ(img->pixels.size(), 36u);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(img->pixels[i * 3 + 0], 200 + i);
    EXPECT_EQ(img->pixels[i * 3 + 1], 100 + i);
    EXPECT_EQ(img->pixels[i * 3 + 2], 10 + i);
  }
}

TEST(ImageIoTest, SixteenBitPngIsScaledTo8Bit) {
  cv::Mat bgr16(2, 3, CV_16UC3);
  const uint16_t values[] = {0, 257, 65535, 1000, 12850, 40000};
  for (int i = 0; i < 6; ++i) {
    bgr16.at<cv::Vec3w>(i / 3, i % 3) =
        cv::Vec3w(values[i], values[(i + 1) % 6], values[(i + 2) % 6]);
  }
  absl::StatusOr<RgbImage> img = DecodeImage(CvEncode(bgr16, ".png"));
  ASSERT_OK(img.status());
  auto scaled = [](uint16_t v) { return int(std::lround(v / 257.0)); };
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(img->pixels[i * 3 + 0], scaled(values[(i + 2) % 6])) << i;  // R
    EXPECT_EQ(img->pixels[i * 3 + 1], scaled(values[(i + 1) % 6])) << i;  // G
    EXPECT_EQ(img->pixels[i * 3 + 2], scaled(values[i])) << i;            // B
  }
  cv::Mat gray16(1, 2, CV_16UC1);
  gray16.at<uint16_t>(0, 0) = 65535;
  gray16.at<uint16_t>(0, 1) = 514;
  absl::StatusOr<RgbImage> gray = DecodeImage(CvEncode(gray16, ".png"));
  ASSERT_OK(gray.status());
  EXPECT_EQ(gray->pixels, std::vector<uint8_t>({255, 255, 255, 2, 2, 2}));
}

TEST(ImageIoTest, WebpLosslessLossyAndAlpha) {
  const RgbImage img = MakeImage(30, 20);
  const cv::Mat bgr = ToBgr(img);
  // Quality above 100 selects lossless (VP8L).
  const std::string lossless = CvEncode(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101});
  absl::StatusOr<ImageInfo> info = ProbeImage(lossless);
  ASSERT_OK(info.status());
  EXPECT_EQ(info->format, ImageFormat::kWebp);
  EXPECT_EQ(info->width, 30);
  EXPECT_EQ(info->height, 20);
  absl::StatusOr<RgbImage> back = DecodeImage(lossless);
  ASSERT_OK(back.status());
  EXPECT_EQ(back->pixels, img.pixels);

  const std::string lossy = CvEncode(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 95});  // VP8
  info = ProbeImage(lossy);
  ASSERT_OK(info.status());
  EXPECT_EQ(info->width, 30);
  EXPECT_EQ(info->height, 20);
  back = DecodeImage(lossy);
  ASSERT_OK(back.status());
  EXPECT_LT(MeanAbsDiff(*back, img), 6.0);

  cv::Mat bgra;
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  const std::string with_alpha = CvEncode(bgra, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101});
  info = ProbeImage(with_alpha);
  ASSERT_OK(info.status());
  EXPECT_EQ(info->width, 30);
  EXPECT_EQ(info->height, 20);
  back = DecodeImage(with_alpha);
  ASSERT_OK(back.status());
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(ImageIoTest, BmpRoundTripIsExact) {
  const RgbImage img = MakeImage(13, 9);  // odd width: rows are padded
  const std::string bmp = CvEncode(ToBgr(img), ".bmp");
  absl::StatusOr<ImageInfo> info = ProbeImage(bmp);
  ASSERT_OK(info.status());
  EXPECT_EQ(info->format, ImageFormat::kBmp);
  EXPECT_EQ(info->width, 13);
  EXPECT_EQ(info->height, 9);
  absl::StatusOr<RgbImage> back = DecodeImage(bmp);
  ASSERT_OK(back.status());
  EXPECT_EQ(back->pixels, img.pixels);
}

TEST(ImageIoTest, HugePngHeaderIsRefusedBeforeDecoding) {
  const std::string png = PngWithHeaderSize(50000, 50000);
  absl::StatusOr<ImageInfo> info = ProbeImage(png);
  ASSERT_OK(info.status());
  EXPECT_EQ(info->width, 50000);
  EXPECT_EQ(info->height, 50000);
  EXPECT_THAT(DecodeImage(png),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("50000x50000"), HasSubstr("exceeds the limit"))));
}

TEST(ImageIoTest, PixelBudgetIsInclusiveAndConfigurable) {
  absl::StatusOr<std::string> png = EncodePng(MakeImage(100, 100));
  ASSERT_OK(png.status());
  DecodeOptions options;
  options.max_pixels = 10000;
  EXPECT_THAT(DecodeImage(*png, options), IsOk());
  options.max_pixels = 9999;
  absl::StatusOr<RgbImage> over = DecodeImage(*png, options);
  EXPECT_THAT(over, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("100x100")));
  // The reason is set here, where the cause is known, so callers never
  // read it from the message.
  EXPECT_EQ(util::ErrorReasonOf(over.status()), util::kReasonImageTooLarge);
  EXPECT_EQ(util::ErrorReasonOf(DecodeImage("not an image").status()), "");
}

TEST(ImageIoTest, HugeJpegWebpBmpHeadersAreRefused) {
  // JPEG: SOI, SOF0 (precision 8, 60000 rows, 65000 columns, 1 component), SOS.
  std::string jpeg("\xFF\xD8\xFF\xC0\x00\x0B\x08\xEA\x60\xFD\xE8\x01\x01\x11\x00", 15);
  jpeg += std::string("\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00", 10);
  // WebP extended header with a 16384x16384 canvas.
  std::string webp = "RIFF";
  AppendLe(webp, 22, 4);
  webp += "WEBPVP8X";
  AppendLe(webp, 10, 4);
  AppendLe(webp, 0, 4);
  AppendLe(webp, 16383, 3);
  AppendLe(webp, 16383, 3);
  // BMP, top-down (negative height) 100000x90000.
  std::string bmp = "BM";
  AppendLe(bmp, 0, 4 * 3);
  AppendLe(bmp, 40, 4);
  AppendLe(bmp, 100000, 4);
  AppendLe(bmp, uint32_t(-90000), 4);
  AppendLe(bmp, 0, 28);

  struct Case {
    std::string bytes;
    ImageFormat format;
    int64_t width, height;
  } cases[] = {{jpeg, ImageFormat::kJpeg, 65000, 60000},
               {webp, ImageFormat::kWebp, 16384, 16384},
               {bmp, ImageFormat::kBmp, 100000, 90000}};
  for (const Case& c : cases) {
    absl::StatusOr<ImageInfo> info = ProbeImage(c.bytes);
    ASSERT_OK(info.status()) << FormatName(c.format);
    EXPECT_EQ(info->format, c.format);
    EXPECT_EQ(info->width, c.width);
    EXPECT_EQ(info->height, c.height);
    EXPECT_THAT(DecodeImage(c.bytes),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds")))
        << FormatName(c.format);
  }
}

TEST(ImageIoTest, NonImagesAndBadHeadersGiveReasons) {
  EXPECT_THAT(DecodeImage(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(DecodeImage("hello, world"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a supported image")));
  EXPECT_THAT(DecodeImage("GIF89a\x01\x00\x01\x00"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a supported image")));
  EXPECT_THAT(DecodeImage(std::string("\x89PNG\r\n\x1a\n", 8)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PNG header is truncated")));
  EXPECT_THAT(DecodeImage(PngWithHeaderSize(0, 10)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid size 0x10")));
  EXPECT_THAT(DecodeImage(PngWithHeaderSize(0x80000000u, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid size")));
  // A JPEG whose scan comes before any frame header.
  EXPECT_THAT(DecodeImage(std::string("\xFF\xD8\xFF\xDA\x00\x02", 6)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scan before any frame")));
}

TEST(ImageIoTest, TruncatedImagesAreRefused) {
  const RgbImage img = MakeImage(64, 48);
  const cv::Mat bgr = ToBgr(img);
  const std::pair<const char*, std::string> encoded[] = {
      {"png", CvEncode(bgr, ".png")},
      {"jpeg", CvEncode(bgr, ".jpg")},
      {"webp", CvEncode(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101})},
      {"bmp", CvEncode(bgr, ".bmp")}};
  for (const auto& [name, bytes] : encoded) {
    ASSERT_OK(DecodeImage(bytes).status()) << name;
    EXPECT_THAT(DecodeImage(bytes.substr(0, bytes.size() * 2 / 3)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << name;
  }
}

TEST(ImageIoTest, DecodeImageFileNamesTheFile) {
  const std::string dir = ::testing::TempDir();
  const std::string missing = dir + "/provp_image_io_missing.png";
  EXPECT_THAT(DecodeImageFile(missing), StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));

  const std::string bad = dir + "/provp_image_io_bad.png";
  ASSERT_OK(util::WriteFileAtomic(bad, "not an image"));
  EXPECT_THAT(DecodeImageFile(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bad)));

  const std::string good = dir + "/provp_image_io_good.png";
  absl::StatusOr<std::string> png = EncodePng(MakeImage(8, 6));
  ASSERT_OK(png.status());
  ASSERT_OK(util::WriteFileAtomic(good, *png));
  absl::StatusOr<RgbImage> img = DecodeImageFile(good);
  ASSERT_OK(img.status());
  EXPECT_EQ(img->width, 8);
  EXPECT_EQ(img->height, 6);
}

// Any input must give either an error with a reason or a consistent image.
void ExpectErrorOrValidImage(const std::string& bytes, const std::string& what) {
  DecodeOptions options;
  options.max_pixels = 1 << 20;
  absl::StatusOr<RgbImage> img = DecodeImage(bytes, options);
  if (img.ok()) {
    EXPECT_GT(img->width, 0) << what;
    EXPECT_GT(img->height, 0) << what;
    EXPECT_LE(int64_t{img->width} * img->height, options.max_pixels) << what;
    EXPECT_EQ(img->pixels.size(), size_t(img->width) * img->height * 3) << what;
  } else {
    EXPECT_EQ(img.status().code(), absl::StatusCode::kInvalidArgument)
        << what << ": " << img.status();
    EXPECT_FALSE(img.status().message().empty()) << what;
  }
}

TEST(ImageIoFuzzTest, RandomBytesNeverCrash) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  std::mt19937_64 rng(20261127);
  const std::string prefixes[] = {"", std::string("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", 16),
                                  std::string("\xFF\xD8\xFF", 3), "RIFF\x10\x00\x00\x00WEBPVP8",
                                  "BM"};
  int count = 0;
  for (const std::string& prefix : prefixes) {
    for (int i = 0; i < 800; ++i, ++count) {
      std::string bytes = prefix;
      const size_t n = rng() % 300;
      for (size_t k = 0; k < n; ++k) bytes.push_back(char(rng() & 0xFF));
      ExpectErrorOrValidImage(bytes, "random case " + std::to_string(count));
    }
  }
  EXPECT_EQ(count, 4000);
}

TEST(ImageIoFuzzTest, TruncatedAndBitFlippedImagesNeverCrash) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  const RgbImage img = MakeImage(40, 30, 7);
  const cv::Mat bgr = ToBgr(img);
  cv::Mat gray;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  const std::pair<const char*, std::string> encoded[] = {
      {"png", CvEncode(bgr, ".png")},
      {"gray png", CvEncode(gray, ".png")},
      {"jpeg", CvEncode(bgr, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 80})},
      {"progressive jpeg", CvEncode(bgr, ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1})},
      {"webp lossless", CvEncode(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101})},
      {"webp lossy", CvEncode(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 80})},
      {"bmp", CvEncode(bgr, ".bmp")}};
  std::mt19937_64 rng(42);
  for (const auto& [name, bytes] : encoded) {
    ASSERT_OK(DecodeImage(bytes).status()) << name;
    const size_t step = std::max<size_t>(1, bytes.size() / 200);
    for (size_t len = 0; len < bytes.size(); len += step) {
      ExpectErrorOrValidImage(bytes.substr(0, len),
                              std::string(name) + " cut at " + std::to_string(len));
    }
    for (int i = 0; i < 300; ++i) {
      std::string flipped = bytes;
      const int flips = 1 + int(rng() % 4);
      for (int f = 0; f < flips; ++f) flipped[rng() % flipped.size()] ^= char(1 << (rng() % 8));
      ExpectErrorOrValidImage(flipped, std::string(name) + " flip case " + std::to_string(i));
    }
  }
}

}  // namespace
}  // namespace provp::image
