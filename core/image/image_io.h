// Image decoding into 8-bit RGB, with the checks a server needs before it
// spends memory on untrusted bytes: the header's claimed size is read first
// and images over a pixel budget are refused before decoding. Handles JPEG,
// PNG, WebP, BMP; grayscale, RGBA and 16-bit inputs become 8-bit RGB. The
// pixels come from OpenCV or from the native codec, as the build chose
// (pixel_codec.h). No LibTorch here (this library links image libraries,
// which the LibTorch-only core must not). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::image {

// Interleaved 8-bit RGB, row-major [height, width, 3].
struct RgbImage {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;
};

// What the header of an encoded image claims, read without decoding.
enum class ImageFormat { kPng, kJpeg, kWebp, kBmp };

struct ImageInfo {
  ImageFormat format = ImageFormat::kPng;
  int64_t width = 0;
  int64_t height = 0;
};

struct DecodeOptions {
  // Images whose header claims more pixels than this are refused before
  // decoding (64 megapixels by default). OpenCV's own ceiling
  // (OPENCV_IO_MAX_IMAGE_PIXELS, default 2^30) is read once when its library
  // loads, so it cannot be lowered from here; deployments that want it as a
  // second line of defence set it in the process environment.
  int64_t max_pixels = int64_t{64} * 1000 * 1000;
};

// Reads the format and the claimed size from the first bytes (PNG IHDR, JPEG
// SOFn, WebP VP8/VP8L/VP8X, BMP info header) without decoding anything.
// INVALID_ARGUMENT for other formats, short or malformed headers and zero
// sizes. The size is only a claim: DecodeImage checks the decoded result too.
absl::StatusOr<ImageInfo> ProbeImage(absl::string_view bytes);

// Short name of a format ("PNG", "JPEG", "WebP", "BMP") for messages.
// Inline: both pixel codecs use it without linking image_io.
inline const char* FormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kBmp:
      return "BMP";
  }
  return "unknown";
}

// Decodes encoded bytes. INVALID_ARGUMENT for non-images, truncated data or
// over-large images (those with util::kReasonImageTooLarge), with the cause in the
// message. Grayscale becomes RGB,
// alpha is dropped before any resizing (the Python reference resizes RGBA
// first, so RGBA results differ slightly from it), 16-bit samples are scaled
// by 1/257 and rounded. EXIF orientation is not applied (neither does PIL's
// Image.open, which the reference uses). A build with the native codec
// refuses run-length-encoded BMP; otherwise both codecs accept the same
// files and give the same pixels.
absl::StatusOr<RgbImage> DecodeImage(absl::string_view bytes, const DecodeOptions& options = {});

// Reads and decodes a file; errors name the file.
absl::StatusOr<RgbImage> DecodeImageFile(const std::string& path,
                                         const DecodeOptions& options = {});

// Encodes RGB as PNG (tests, demo data generation).
absl::StatusOr<std::string> EncodePng(const RgbImage& image);
// Encodes RGB as JPEG with the given quality.
absl::StatusOr<std::string> EncodeJpeg(const RgbImage& image, int quality = 90);

}  // namespace provp::image
