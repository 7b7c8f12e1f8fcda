// Uncompressed BMP read by hand, for both pixel codecs (pixel_codec.h): the
// native codec reads every BMP with it, and the OpenCV codec reads OS/2 1.x
// BMPs with it, because OpenCV 4.6 decodes those as grey (its 12-byte header
// path never marks an image as colour). Accepts what OpenCV's reader does,
// minus RLE (refused with a message that says so); see bmp_reader.cc.
// Stateless, thread-safe.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/image/image_io.h"

namespace provp::image {

// Decodes to packed 8-bit RGB. INVALID_ARGUMENT for corrupt, truncated,
// unsupported (RLE) or over-budget (util::kReasonImageTooLarge) data.
absl::StatusOr<RgbImage> DecodeUncompressedBmp(absl::string_view bytes, int64_t max_pixels);

// True for a BMP whose info header is the 12-byte OS/2 1.x one.
bool IsOs2Bmp(absl::string_view bytes);

}  // namespace provp::image
