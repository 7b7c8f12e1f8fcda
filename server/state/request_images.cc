// Implementation of request_images.h.
#include "server/state/request_images.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/image/image_io.h"
#include "core/util/error_reason.h"
#include "server/state/errors.h"

namespace provp::server {

absl::StatusOr<engine::Image> DecodeRequestImage(const v1::Image& image, const Limits& limits,
                                                 const std::string& field) {
  switch (image.source_case()) {
    case v1::Image::kEncoded: {
      image::DecodeOptions opts;
      opts.max_pixels = limits.max_pixels_per_image;
      auto rgb = image::DecodeImage(image.encoded(), opts);
      if (!rgb.ok()) {
        // The decoder says which failures are the pixel budget.
        const bool too_large = util::ErrorReasonOf(rgb.status()) == util::kReasonImageTooLarge;
        return InvalidArgument(too_large ? util::kReasonImageTooLarge : "IMAGE_DECODE_FAILED",
                               absl::StrCat(field, ": ", rgb.status().message()),
                               field + ".encoded");
      }
      engine::Image out;
      out.height = rgb->height;
      out.width = rgb->width;
      out.rgb = std::move(rgb->pixels);
      return out;
    }
    case v1::Image::kRaw: {
      const v1::RawImage& raw = image.raw();
      const std::string f = field + ".raw";
      if (raw.height() <= 0 || raw.width() <= 0 ||
          (raw.channels() != 1 && raw.channels() != 3 && raw.channels() != 4)) {
        return InvalidArgument("INVALID_RAW_IMAGE",
                               absl::StrCat(f,
                                            ": height and width must be >= 1 and channels "
                                            "1, 3 or 4"),
                               f);
      }
      int64_t pixels = int64_t{raw.height()} * raw.width();
      if (pixels > limits.max_pixels_per_image) {
        return InvalidArgument(
            util::kReasonImageTooLarge,
            absl::StrCat(f, ": ", pixels, " pixels; the limit is ", limits.max_pixels_per_image),
            f);
      }
      if (static_cast<int64_t>(raw.data().size()) != pixels * raw.channels()) {
        return InvalidArgument(
            "INVALID_RAW_IMAGE",
            absl::StrCat(f, ".data has ", raw.data().size(),
                         " bytes; height*width*channels = ", pixels * raw.channels()),
            f + ".data");
      }
      engine::Image out;
      out.height = raw.height();
      out.width = raw.width();
      out.rgb.resize(static_cast<size_t>(pixels) * 3);
      const auto* src = reinterpret_cast<const uint8_t*>(raw.data().data());
      const int c = raw.channels();
      const bool bgr = raw.channel_order() == v1::RawImage::BGR;
      for (int64_t i = 0; i < pixels; ++i) {
        const uint8_t* p = src + i * c;
        uint8_t* q = out.rgb.data() + i * 3;
        if (c == 1) {
          q[0] = q[1] = q[2] = p[0];
        } else if (bgr) {
          q[0] = p[2], q[1] = p[1], q[2] = p[0];
        } else {
          q[0] = p[0], q[1] = p[1], q[2] = p[2];
        }
      }
      return out;
    }
    case v1::Image::kUri:
      return MakeError(absl::StatusCode::kUnimplemented, "URI_INPUT_DISABLED",
                       absl::StrCat(field, ".uri: URI inputs are disabled on this server"));
    default:
      return InvalidArgument("EMPTY_IMAGE", absl::StrCat(field, " has no image data"), field);
  }
}

}  // namespace provp::server
