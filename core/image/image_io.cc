// Image decoding/encoding (see image_io.h): the header probe, the budgets
// and the truncation checks, before a PixelCodec (pixel_codec.h) decodes.
// The probe is hand-written so that the pixel budget is enforced before any
// decoder allocates anything; decoders are only reached for the four
// formats we accept. Thread-safe: no mutable state.
#include "core/image/image_io.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/image/pixel_codec.h"
#include "core/util/error_reason.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace provp::image {
namespace {

// Encoded files larger than this are refused before reading them whole: even
// a 64 MP uncompressed BMP fits well below it.
constexpr uint64_t kMaxFileBytes = uint64_t{512} << 20;

// PNG and BMP store sizes in 32 bits; anything above this is malformed and
// would overflow the pixel product.
constexpr int64_t kMaxSide = std::numeric_limits<int32_t>::max();

uint32_t Be16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint32_t Le16(const unsigned char* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 8); }
uint32_t Le24(const unsigned char* p) { return Le16(p) | (uint32_t{p[2]} << 16); }
uint32_t Le32(const unsigned char* p) { return Le24(p) | (uint32_t{p[3]} << 24); }

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

// ProbeImage plus, for JPEG, where the first scan starts (the truncation
// check looks for the end-of-image marker after it).
struct Probe {
  ImageInfo info;
  size_t jpeg_scan_offset = 0;
  // Uncompressed BMP: pixel data offset and bits per pixel, for the
  // truncation check (OpenCV fills missing rows silently). 0 = unknown.
  uint64_t bmp_data_offset = 0;
  uint32_t bmp_bits_per_pixel = 0;
};

absl::StatusOr<Probe> ProbePng(const unsigned char* b, size_t n) {
  // Signature (8) + chunk length (4) + "IHDR" (4) + width (4) + height (4).
  if (n < 24) return Invalid("PNG header is truncated");
  if (std::memcmp(b + 12, "IHDR", 4) != 0) return Invalid("PNG does not start with an IHDR chunk");
  Probe p;
  p.info.format = ImageFormat::kPng;
  p.info.width = Be32(b + 16);
  p.info.height = Be32(b + 20);
  return p;
}

bool IsJpegSof(unsigned char m) {
  // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

absl::StatusOr<Probe> ProbeJpeg(const unsigned char* b, size_t n) {
  Probe p;
  p.info.format = ImageFormat::kJpeg;
  bool have_frame = false;
  size_t pos = 2;  // after SOI
  while (true) {
    if (pos >= n) return Invalid("JPEG header is truncated (no start of scan)");
    if (b[pos] != 0xFF) return Invalid(absl::StrCat("JPEG: expected a marker at byte ", pos));
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) return Invalid("JPEG header is truncated");
    const unsigned char marker = b[pos++];
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;  // no payload
    if (marker == 0xD8 || marker == 0xD9 || marker == 0x00) {
      return Invalid(
          absl::StrCat("JPEG: unexpected marker 0x", absl::Hex(marker), " before the first scan"));
    }
    if (pos + 2 > n) return Invalid("JPEG header is truncated");
    const size_t length = Be16(b + pos);
    if (length < 2) return Invalid(absl::StrCat("JPEG: bad segment length at byte ", pos));
    if (marker == 0xDA) {
      if (!have_frame) return Invalid("JPEG: scan before any frame header");
      p.jpeg_scan_offset = pos + length;
      return p;
    }
    if (IsJpegSof(marker)) {
      // length (2) + precision (1) + height (2) + width (2) + components (1).
      if (length < 8 || pos + 7 > n) return Invalid("JPEG frame header is truncated");
      p.info.height = Be16(b + pos + 3);
      p.info.width = Be16(b + pos + 5);
      if (p.info.height == 0) return Invalid("JPEG: height 0 (DNL-defined height is unsupported)");
      have_frame = true;
    }
    pos += length;
  }
}

absl::StatusOr<Probe> ProbeWebp(const unsigned char* b, size_t n) {
  // "RIFF" size "WEBP", then the first chunk's fourcc and size at 12..19.
  if (n < 20) return Invalid("WebP header is truncated");
  Probe p;
  p.info.format = ImageFormat::kWebp;
  const unsigned char* chunk = b + 12;
  const unsigned char* d = b + 20;
  if (std::memcmp(chunk, "VP8 ", 4) == 0) {
    // Frame tag (3), start code 9d 01 2a (3), 14-bit width and height.
    if (n < 30) return Invalid("WebP (VP8) header is truncated");
    if (d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a) return Invalid("WebP: bad VP8 start code");
    p.info.width = Le16(d + 6) & 0x3FFF;
    p.info.height = Le16(d + 8) & 0x3FFF;
  } else if (std::memcmp(chunk, "VP8L", 4) == 0) {
    // Signature 0x2f, then 14-bit width-1 and height-1.
    if (n < 25) return Invalid("WebP (VP8L) header is truncated");
    if (d[0] != 0x2f) return Invalid("WebP: bad VP8L signature");
    const uint32_t bits = Le32(d + 1);
    p.info.width = int64_t{bits & 0x3FFF} + 1;
    p.info.height = int64_t{(bits >> 14) & 0x3FFF} + 1;
  } else if (std::memcmp(chunk, "VP8X", 4) == 0) {
    // Flags (1), reserved (3), 24-bit canvas width-1 and height-1.
    if (n < 30) return Invalid("WebP (VP8X) header is truncated");
    p.info.width = int64_t{Le24(d + 4)} + 1;
    p.info.height = int64_t{Le24(d + 7)} + 1;
  } else {
    return Invalid("WebP: first chunk is not VP8, VP8L or VP8X");
  }
  return p;
}

absl::StatusOr<Probe> ProbeBmp(const unsigned char* b, size_t n) {
  // File header (14), then the info header whose size says its layout.
  if (n < 18) return Invalid("BMP header is truncated");
  Probe p;
  p.info.format = ImageFormat::kBmp;
  const uint32_t info_size = Le32(b + 14);
  if (info_size == 12) {  // OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes
    if (n < 26) return Invalid("BMP header is truncated");
    p.info.width = Le16(b + 18);
    p.info.height = Le16(b + 20);
    p.bmp_bits_per_pixel = Le16(b + 24);
    p.bmp_data_offset = Le32(b + 10);
  } else if (info_size >= 16 && info_size <= 1024) {
    if (n < 26) return Invalid("BMP header is truncated");
    const int64_t w = static_cast<int32_t>(Le32(b + 18));
    const int64_t h = static_cast<int32_t>(Le32(b + 22));
    p.info.width = w;
    p.info.height = h < 0 ? -h : h;  // negative height = top-down rows
    // BI_RGB (0) and BI_BITFIELDS (3) store rows uncompressed.
    if (info_size >= 40 && n >= 34) {
      const uint32_t compression = Le32(b + 30);
      if (compression == 0 || compression == 3) {
        p.bmp_bits_per_pixel = Le16(b + 28);
        p.bmp_data_offset = Le32(b + 10);
      }
    }
  } else {
    return Invalid(absl::StrCat("BMP: unsupported info header size ", info_size));
  }
  return p;
}

absl::StatusOr<Probe> ProbeInternal(absl::string_view bytes) {
  if (bytes.empty()) return Invalid("empty image data");
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  absl::StatusOr<Probe> probe;
  if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) {
    probe = ProbePng(b, n);
  } else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    probe = ProbeJpeg(b, n);
  } else if (n >= 12 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0) {
    probe = ProbeWebp(b, n);
  } else if (n >= 2 && b[0] == 'B' && b[1] == 'M') {
    probe = ProbeBmp(b, n);
  } else {
    return Invalid("not a supported image (expected JPEG, PNG, WebP or BMP)");
  }
  if (!probe.ok()) return probe.status();
  const ImageInfo& info = probe->info;
  if (info.width <= 0 || info.height <= 0 || info.width > kMaxSide || info.height > kMaxSide) {
    return Invalid(absl::StrCat(FormatName(info.format), " header claims an invalid size ",
                                info.width, "x", info.height));
  }
  return probe;
}

absl::Status CheckEncodable(const RgbImage& image) {
  if (image.height <= 0 || image.width <= 0) {
    return Invalid(absl::StrCat("cannot encode an image of size ", image.width, "x", image.height));
  }
  const uint64_t expected = uint64_t(image.height) * uint64_t(image.width) * 3;
  if (image.pixels.size() != expected) {
    return Invalid(absl::StrCat("pixel buffer holds ", image.pixels.size(), " bytes, expected ",
                                expected, " for ", image.width, "x", image.height, " RGB"));
  }
  return absl::OkStatus();
}

}  // namespace

const PixelCodec& DefaultPixelCodec() {
#if defined(PROVP_IMAGE_CODEC_NATIVE) && PROVP_IMAGE_CODEC_NATIVE
  return NativePixelCodec();
#else
  return OpenCvPixelCodec();
#endif
}

absl::StatusOr<ImageInfo> ProbeImage(absl::string_view bytes) {
  ASSIGN_OR_RETURN(Probe probe, ProbeInternal(bytes));
  return probe.info;
}

absl::StatusOr<RgbImage> DecodeImageWith(const PixelCodec& codec, absl::string_view bytes,
                                         const DecodeOptions& options) {
  ASSIGN_OR_RETURN(Probe probe, ProbeInternal(bytes));
  const ImageInfo& info = probe.info;
  const int64_t pixels = info.width * info.height;  // both <= 2^31: no overflow
  if (pixels > options.max_pixels) {
    return util::WithErrorReason(
        absl::InvalidArgumentError(
            absl::StrCat(FormatName(info.format), " image of ", info.width, "x", info.height, " (",
                         pixels, " pixels) exceeds the limit of ", options.max_pixels, " pixels")),
        util::kReasonImageTooLarge);
  }
  if (bytes.size() > kMaxFileBytes) {
    return Invalid(absl::StrCat("image data of ", bytes.size(), " bytes exceeds the limit of ",
                                kMaxFileBytes, " bytes"));
  }
  if (info.format == ImageFormat::kJpeg) {
    // libjpeg only warns on stderr about a cut-off file and pads it with
    // grey; PIL (the reference) refuses such files, and so do we.
    if (bytes.find("\xFF\xD9", probe.jpeg_scan_offset) == absl::string_view::npos) {
      return Invalid("JPEG data is truncated (no end-of-image marker)");
    }
  }
  if (info.format == ImageFormat::kBmp && probe.bmp_bits_per_pixel > 0 &&
      probe.bmp_bits_per_pixel <= 32) {
    // Rows are padded to 4 bytes. Sizes are below 2^31 and bpp <= 32, so the
    // stride fits; the product is checked by division.
    const uint64_t stride = (uint64_t(info.width) * probe.bmp_bits_per_pixel + 31) / 32 * 4;
    const uint64_t available =
        bytes.size() > probe.bmp_data_offset ? bytes.size() - probe.bmp_data_offset : 0;
    if (available / stride < uint64_t(info.height)) {
      return Invalid(absl::StrCat("BMP data is truncated (", bytes.size(), " bytes for ",
                                  info.width, "x", info.height, " at ", probe.bmp_bits_per_pixel,
                                  " bits per pixel)"));
    }
  }
  return codec.decode(bytes, info, options.max_pixels);
}

absl::StatusOr<RgbImage> DecodeImage(absl::string_view bytes, const DecodeOptions& options) {
  return DecodeImageWith(DefaultPixelCodec(), bytes, options);
}

absl::StatusOr<RgbImage> DecodeImageFile(const std::string& path, const DecodeOptions& options) {
  absl::StatusOr<std::string> bytes = util::ReadFile(path, kMaxFileBytes);
  if (!bytes.ok()) {
    return util::WithMessage(bytes.status(),
                             absl::StrCat("reading image ", path, ": ", bytes.status().message()));
  }
  absl::StatusOr<RgbImage> image = DecodeImage(*bytes, options);
  if (!image.ok()) {
    return util::WithMessage(image.status(),
                             absl::StrCat("image ", path, ": ", image.status().message()));
  }
  return image;
}

absl::StatusOr<std::string> EncodePng(const RgbImage& image) {
  RETURN_IF_ERROR(CheckEncodable(image));
  return DefaultPixelCodec().encode_png(image);
}

absl::StatusOr<std::string> EncodeJpeg(const RgbImage& image, int quality) {
  if (quality < 0 || quality > 100) {
    return Invalid(absl::StrCat("JPEG quality must be in [0, 100], got ", quality));
  }
  RETURN_IF_ERROR(CheckEncodable(image));
  return DefaultPixelCodec().encode_jpeg(image, quality);
}

}  // namespace provp::image
