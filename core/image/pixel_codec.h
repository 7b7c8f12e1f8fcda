// The seam between image_io's checks and the library that turns encoded
// bytes into pixels. image_io probes the header, enforces the pixel and
// byte budgets and the truncation checks, then calls a PixelCodec; the
// codec only decodes and converts to 8-bit RGB. Two codecs exist with the
// same results (tests/unit/image/pixel_codecs_agree_test.cc): OpenCV's
// (the default) and a native one on libjpeg-turbo, libpng and libwebp that
// links ~1.5 MB instead of OpenCV's ~220 MB of dependencies, for hosts the
// Debian packages must be carried to (scripts/gpu/). Stateless, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/image/image_io.h"

namespace provp::image {

struct PixelCodec {
  // "opencv" or "native", for logs and the build's description.
  const char* name;
  // Decodes `bytes`, whose header `info` describes (already probed and
  // within budget), into packed 8-bit RGB with image_io.h's conversions:
  // grey replicated, alpha dropped without compositing, 16-bit samples
  // scaled by 1/257 and rounded. INVALID_ARGUMENT for corrupt data, the
  // reason in the message; RESOURCE_EXHAUSTED when memory runs out. Refuses
  // a decoded size above `max_pixels` (with util::kReasonImageTooLarge).
  absl::StatusOr<RgbImage> (*decode)(absl::string_view bytes, const ImageInfo& info,
                                     int64_t max_pixels);
  // Encoders for tests and demo data; the image is already validated.
  absl::StatusOr<std::string> (*encode_png)(const RgbImage& image);
  absl::StatusOr<std::string> (*encode_jpeg)(const RgbImage& image, int quality);
};

// Each is defined only where its library is linked (provp_image_codec_opencv,
// provp_image_codec_native).
const PixelCodec& OpenCvPixelCodec();
const PixelCodec& NativePixelCodec();

// The codec this build's DecodeImage uses (PROVP_IMAGE_CODEC at configure time).
const PixelCodec& DefaultPixelCodec();

// DecodeImage with an explicit codec (tests compare the two).
absl::StatusOr<RgbImage> DecodeImageWith(const PixelCodec& codec, absl::string_view bytes,
                                         const DecodeOptions& options = {});

}  // namespace provp::image
