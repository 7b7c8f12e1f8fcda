// Image decoding with OpenCV into 8-bit RGB, with the checks a server needs
// before it spends memory on untrusted bytes: the header's claimed size is
// read first and images over a pixel budget are refused before decoding.
// Handles JPEG, PNG, WebP, BMP; grayscale, RGBA and 16-bit inputs become
// 8-bit RGB. No LibTorch here (this library links OpenCV, which the
// LibTorch-only core must not). Thread-safe.
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

struct DecodeOptions {
  // Images whose header claims more pixels than this are refused before
  // decoding (64 megapixels by default).
  int64_t max_pixels = int64_t{64} * 1000 * 1000;
};

// Decodes encoded bytes. INVALID_ARGUMENT for non-images, truncated data or
// over-large images, with the reason in the message.
absl::StatusOr<RgbImage> DecodeImage(absl::string_view bytes, const DecodeOptions& options = {});

// Reads and decodes a file; errors name the file.
absl::StatusOr<RgbImage> DecodeImageFile(const std::string& path,
                                         const DecodeOptions& options = {});

// Encodes RGB as PNG (tests, demo data generation).
absl::StatusOr<std::string> EncodePng(const RgbImage& image);
// Encodes RGB as JPEG with the given quality.
absl::StatusOr<std::string> EncodeJpeg(const RgbImage& image, int quality = 90);

}  // namespace provp::image
