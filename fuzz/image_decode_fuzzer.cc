// libFuzzer target: image probing and decoding with the server's size
// limits (here a small pixel budget, so the fuzzer explores the refusal
// paths without multi-megapixel allocations). An accepted image must have
// the claimed shape, fit the budget and hold exactly height*width*3 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "core/image/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto info = provp::image::ProbeImage(bytes);
  provp::image::DecodeOptions options;
  options.max_pixels = 1 << 20;
  auto image = provp::image::DecodeImage(bytes, options);
  if (!image.ok()) return 0;
  if (!info.ok()) std::abort();  // Decoding must not accept what probing refused.
  if (image->width <= 0 || image->height <= 0) std::abort();
  if (int64_t{image->width} * image->height > options.max_pixels) std::abort();
  if (image->pixels.size() != static_cast<size_t>(image->width) * image->height * 3) std::abort();
  return 0;
}
