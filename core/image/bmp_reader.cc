// Implementation of bmp_reader.h. What OpenCV's BMP reader accepts, minus
// RLE, with its results: 1/4/8-bit palettes (a grey palette gives the same
// RGB as OpenCV's grey output replicated; indices past the stored entries
// are black), 16-bit 5-5-5 (BI_RGB, or BI_BITFIELDS with those masks) and
// 5-6-5 (BI_BITFIELDS), 24-bit, 32-bit (BI_RGB or BI_BITFIELDS, see below),
// bottom-up or top-down; 16-bit BI_BITFIELDS masks are read right after the
// info header, where OpenCV reads them; OS/2 1.x headers with 3-byte palette
// entries, in colour.
// 32-bit BI_BITFIELDS as OpenCV 4.6 reads it (imdecode with
// IMREAD_UNCHANGED): with a 40-byte info header the bytes are B, G, R, A
// whatever masks follow; with an info header of 56 bytes or more the red,
// green, blue and alpha masks are read from the header (file offsets 54..69,
// after clrImportant; the file is refused when they are cut off) and, when
// the three colour masks are all nonzero, each channel is
// (pixel & mask) >> (trailing zero bits of mask), cut to 8 bits; otherwise
// the bytes are B, G, R, A again. (Measured against Debian's OpenCV 4.6; the
// image_codecs_agree fuzzer found the cut-off case.)
#include "core/image/bmp_reader.h"

#include <array>
#include <cstddef>
#include <new>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/error_reason.h"

namespace provp::image {
namespace {

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

absl::Status TooLarge(int64_t width, int64_t height, int64_t max_pixels) {
  return util::WithErrorReason(
      absl::InvalidArgumentError(absl::StrCat("decoded image of ", width, "x", height,
                                              " exceeds the limit of ", max_pixels, " pixels")),
      util::kReasonImageTooLarge);
}

absl::Status Allocate(RgbImage& out, int64_t width, int64_t height) {
  try {
    out.width = static_cast<int>(width);
    out.height = static_cast<int>(height);
    out.pixels.assign(static_cast<size_t>(width) * static_cast<size_t>(height) * 3, 0);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory decoding BMP");
  }
  return absl::OkStatus();
}

uint32_t Le16(const unsigned char* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 8); }
uint32_t Le32(const unsigned char* p) { return Le16(p) | (Le16(p + 2) << 16); }

// One channel of a 32-bit BI_BITFIELDS pixel; `mask` is nonzero.
uint8_t MaskedChannel(uint32_t pixel, uint32_t mask) {
  int shift = 0;
  while (((mask >> shift) & 1u) == 0) ++shift;
  return static_cast<uint8_t>((pixel & mask) >> shift);
}

}  // namespace

absl::StatusOr<RgbImage> DecodeUncompressedBmp(absl::string_view bytes, int64_t max_pixels) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  auto need = [&](size_t end) { return end <= n; };
  const absl::Status bad = Invalid("cannot decode BMP data (corrupt or unsupported)");
  if (!need(18)) return bad;
  const uint32_t data_offset = Le32(b + 10);
  const uint32_t header_size = Le32(b + 14);
  int64_t width = 0;
  int64_t height = 0;  // negative: top-down
  uint32_t bpp = 0;
  uint32_t compression = 0;
  uint32_t palette_entries = 0;
  int palette_stride = 4;
  size_t palette_at = 14 + size_t{header_size};
  enum { kRgb = 0, kRle8 = 1, kRle4 = 2, kBitfields = 3 };
  // 32-bit BI_BITFIELDS channel masks that apply (red, green, blue).
  std::optional<std::array<uint32_t, 3>> masks;
  if (header_size >= 36 && header_size <= 0x7fffffff) {
    if (!need(14 + 36)) return bad;
    width = static_cast<int32_t>(Le32(b + 18));
    height = static_cast<int32_t>(Le32(b + 22));
    bpp = Le16(b + 28);
    compression = Le32(b + 30);
    const int32_t used = static_cast<int32_t>(Le32(b + 46));
    if (compression == kRle8 || compression == kRle4) {
      return Invalid("cannot decode BMP: run-length-encoded BMP is not supported by this build");
    }
    const bool ok =
        ((bpp == 1 || bpp == 4 || bpp == 8 || bpp == 24 || bpp == 32) && compression == kRgb) ||
        ((bpp == 16 || bpp == 32) && (compression == kRgb || compression == kBitfields));
    if (!ok || width <= 0 || height == 0) return bad;
    if (bpp == 32 && compression == kBitfields && header_size >= 56) {
      if (!need(70)) return bad;
      const uint32_t red = Le32(b + 54);
      const uint32_t green = Le32(b + 58);
      const uint32_t blue = Le32(b + 62);
      if (red != 0 && green != 0 && blue != 0) masks = {red, green, blue};
    }
    if (bpp <= 8) {
      if (used < 0 || used > 256) return bad;
      palette_entries = used == 0 ? (1u << bpp) : uint32_t(used);
    } else if (bpp == 16 && compression == kBitfields) {
      // Masks right after the info header, where OpenCV reads them.
      if (!need(palette_at + 12)) return bad;
      const uint32_t red = Le32(b + palette_at);
      const uint32_t green = Le32(b + palette_at + 4);
      const uint32_t blue = Le32(b + palette_at + 8);
      if (blue == 0x1f && green == 0x3e0 && red == 0x7c00) {
        bpp = 15;
      } else if (!(blue == 0x1f && green == 0x7e0 && red == 0xf800)) {
        return bad;
      }
    } else if (bpp == 16) {
      bpp = 15;
    }
  } else if (header_size == 12) {
    if (!need(26)) return bad;
    width = Le16(b + 18);
    height = Le16(b + 20);
    bpp = Le16(b + 24);
    if (width <= 0 || height == 0 ||
        !(bpp == 1 || bpp == 4 || bpp == 8 || bpp == 24 || bpp == 32)) {
      return bad;
    }
    if (bpp <= 8) palette_entries = 1u << bpp;
    palette_stride = 3;
  } else {
    return bad;
  }
  const bool top_down = height < 0;
  if (top_down) height = -height;
  if (width * height > max_pixels) return TooLarge(width, height, max_pixels);
  // Palette as (b, g, r); entries past those stored stay black.
  uint8_t palette[256][3] = {};
  if (palette_entries > 0) {
    if (!need(palette_at + size_t{palette_entries} * palette_stride)) return bad;
    for (uint32_t i = 0; i < palette_entries; ++i) {
      for (int c = 0; c < 3; ++c) palette[i][c] = b[palette_at + i * palette_stride + c];
    }
  }
  const uint64_t bits = bpp == 15 ? 16 : bpp;
  const uint64_t stride = (uint64_t(width) * bits + 31) / 32 * 4;
  if (data_offset > n || (n - data_offset) / stride < uint64_t(height)) return bad;
  RgbImage out;
  if (absl::Status s = Allocate(out, width, height); !s.ok()) return s;
  for (int64_t row = 0; row < height; ++row) {
    const unsigned char* src = b + data_offset + stride * row;
    const int64_t y = top_down ? row : height - 1 - row;
    uint8_t* o = out.pixels.data() + static_cast<size_t>(y) * width * 3;
    auto put_bgr = [&](int64_t x, uint8_t blue, uint8_t green, uint8_t red) {
      o[3 * x] = red;
      o[3 * x + 1] = green;
      o[3 * x + 2] = blue;
    };
    for (int64_t x = 0; x < width; ++x) {
      switch (bpp) {
        case 1:
        case 4:
        case 8: {
          const int per_byte = 8 / int(bpp);
          const int shift = 8 - int(bpp) * (1 + int(x % per_byte));
          const int index = (src[x / per_byte] >> shift) & ((1 << bpp) - 1);
          put_bgr(x, palette[index][0], palette[index][1], palette[index][2]);
          break;
        }
        case 15: {
          const uint32_t v = Le16(src + 2 * x);
          put_bgr(x, (v << 3) & 0xf8, (v >> 2) & 0xf8, (v >> 7) & 0xf8);
          break;
        }
        case 16: {
          const uint32_t v = Le16(src + 2 * x);
          put_bgr(x, (v << 3) & 0xf8, (v >> 3) & 0xfc, (v >> 8) & 0xf8);
          break;
        }
        case 24:
          put_bgr(x, src[3 * x], src[3 * x + 1], src[3 * x + 2]);
          break;
        case 32:
          if (masks) {
            const uint32_t v = Le32(src + 4 * x);
            put_bgr(x, MaskedChannel(v, (*masks)[2]), MaskedChannel(v, (*masks)[1]),
                    MaskedChannel(v, (*masks)[0]));
          } else {
            put_bgr(x, src[4 * x], src[4 * x + 1], src[4 * x + 2]);
          }
          break;
      }
    }
  }
  return out;
}

bool IsOs2Bmp(absl::string_view bytes) {
  if (bytes.size() < 18 || bytes[0] != 'B' || bytes[1] != 'M') return false;
  return Le32(reinterpret_cast<const unsigned char*>(bytes.data()) + 14) == 12;
}

}  // namespace provp::image
