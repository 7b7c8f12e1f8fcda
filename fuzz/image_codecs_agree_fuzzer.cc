// libFuzzer target, differential: the OpenCV and the native pixel codecs
// (core/image/pixel_codec.h) must give the same verdict on every input and,
// when both accept it, the same pixels. The one input kind only OpenCV
// reads (RLE BMP) is skipped. Same small pixel budget as image_decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/strings/string_view.h"
#include "core/image/image_io.h"
#include "core/image/pixel_codec.h"

namespace {

// BMP with a BITMAPINFOHEADER (or later) and compression RLE8/RLE4.
bool IsRleBmp(absl::string_view b) {
  if (b.size() < 34 || b[0] != 'B' || b[1] != 'M') return false;
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  const uint32_t header = p[14] | (p[15] << 8) | (p[16] << 16) | (uint32_t{p[17]} << 24);
  const uint32_t compression = p[30] | (p[31] << 8) | (p[32] << 16) | (uint32_t{p[33]} << 24);
  return header >= 36 && (compression == 1 || compression == 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (IsRleBmp(bytes)) return 0;
  provp::image::DecodeOptions options;
  options.max_pixels = 1 << 20;
  auto a = provp::image::DecodeImageWith(provp::image::OpenCvPixelCodec(), bytes, options);
  auto b = provp::image::DecodeImageWith(provp::image::NativePixelCodec(), bytes, options);
  if (a.ok() != b.ok()) std::abort();
  if (!a.ok()) return 0;
  if (a->width != b->width || a->height != b->height || a->pixels != b->pixels) std::abort();
  return 0;
}
