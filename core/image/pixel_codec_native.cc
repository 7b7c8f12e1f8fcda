// The native PixelCodec (pixel_codec.h): libjpeg-turbo, libpng and libwebp
// called directly, plus uncompressed BMP read here, with the settings and
// conversions OpenCV's imdecode(IMREAD_UNCHANGED) + our RGB conversion use,
// so both codecs give the same pixels (pixel_codecs_agree_test.cc and the
// image_codecs_agree fuzzer check it). What it links is ~1.5 MB, so it is
// the codec of builds whose libraries travel (scripts/gpu/). BMP is read by
// bmp_reader.h; the one input it refuses that OpenCV reads is
// run-length-encoded (RLE4/RLE8) BMP.
//
// libjpeg and libpng report errors by longjmp. Every function that calls
// setjmp keeps only trivially destructible locals that are not modified
// after the setjmp (the output buffers are sized before it), so no C++
// destructor is skipped. Thread-safe: all state is per call.
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/image/bmp_reader.h"
#include "core/image/pixel_codec.h"
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

// Allocates the output image; RESOURCE_EXHAUSTED instead of bad_alloc.
absl::Status Allocate(RgbImage& out, int64_t width, int64_t height, ImageFormat format) {
  try {
    out.width = static_cast<int>(width);
    out.height = static_cast<int>(height);
    out.pixels.assign(static_cast<size_t>(width) * static_cast<size_t>(height) * 3, 0);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("out of memory decoding ", FormatName(format)));
  }
  return absl::OkStatus();
}

// --- JPEG (libjpeg-turbo) ---------------------------------------------------

struct JpegError {
  jpeg_error_mgr mgr;  // first: libjpeg's pointer to it is cast back
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  cinfo->err->format_message(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (a corrupt but decodable stream) do not stop OpenCV's decode or
// ours; they are not printed either.
void JpegQuietMessage(j_common_ptr) {}

// Header stage: fills width/height/components. Returns false with `message`
// set on a libjpeg error.
struct JpegJob {
  jpeg_decompress_struct cinfo;
  JpegError err;
  bool created = false;
  bool scanlines_done = false;  // every row decoded: later errors are ignored
};

bool JpegReadHeader(JpegJob& job, const unsigned char* data, size_t size) {
  job.cinfo.err = jpeg_std_error(&job.err.mgr);
  job.err.mgr.error_exit = JpegErrorExit;
  job.err.mgr.output_message = JpegQuietMessage;
  job.err.message[0] = '\0';
  if (setjmp(job.err.jump) != 0) return false;
  jpeg_create_decompress(&job.cinfo);
  job.created = true;
  jpeg_mem_src(&job.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&job.cinfo, TRUE);
  return true;
}

// Decodes into `pixels` (width*height*3, allocated by the caller). CMYK
// (4 components, as Adobe writes it: inverted) is converted as OpenCV does:
// channel = k - ((255 - channel) * k >> 8).
// An error after the last row (jpeg_finish_decompress reading what follows
// the scan: a bad marker, a missing EOI) keeps the image, as OpenCV does.
bool JpegReadPixels(JpegJob& job, uint8_t* pixels, unsigned char* cmyk_row) {
  if (setjmp(job.err.jump) != 0) return job.scanlines_done;
  jpeg_decompress_struct& cinfo = job.cinfo;
  const bool cmyk = cinfo.num_components == 4;
  // OpenCV asks for RGB (grey for one component, which it then replicates:
  // the same values as libjpeg's grey->RGB) or CMYK, with libjpeg's default
  // DCT (JDCT_ISLOW) and fancy upsampling; so do we.
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const size_t width = cinfo.output_width;
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* row = pixels + size_t(cinfo.output_scanline) * width * 3;
    JSAMPROW target = cmyk ? cmyk_row : row;
    jpeg_read_scanlines(&cinfo, &target, 1);
    if (cmyk) {
      for (size_t x = 0; x < width; ++x) {
        const int k = cmyk_row[4 * x + 3];
        for (int c = 0; c < 3; ++c) {
          row[3 * x + c] = static_cast<uint8_t>(k - (((255 - cmyk_row[4 * x + c]) * k) >> 8));
        }
      }
    }
  }
  job.scanlines_done = true;
  jpeg_finish_decompress(&cinfo);
  return true;
}

absl::StatusOr<RgbImage> DecodeJpeg(absl::string_view bytes, int64_t max_pixels) {
  JpegJob job;
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  struct Destroy {
    JpegJob& job;
    ~Destroy() {
      if (job.created) jpeg_destroy_decompress(&job.cinfo);
    }
  } destroy{job};
  if (!JpegReadHeader(job, data, bytes.size())) {
    return Invalid(absl::StrCat("cannot decode JPEG: ", job.err.message));
  }
  const int64_t width = job.cinfo.image_width;
  const int64_t height = job.cinfo.image_height;
  if (width * height > max_pixels) return TooLarge(width, height, max_pixels);
  if (job.cinfo.num_components != 1 && job.cinfo.num_components != 3 &&
      job.cinfo.num_components != 4) {
    return Invalid(absl::StrCat("cannot decode JPEG with ", job.cinfo.num_components,
                                " components"));
  }
  RgbImage out;
  if (absl::Status s = Allocate(out, width, height, ImageFormat::kJpeg); !s.ok()) return s;
  std::vector<unsigned char> cmyk_row;
  try {
    cmyk_row.resize(static_cast<size_t>(width) * 4);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory decoding JPEG");
  }
  if (!JpegReadPixels(job, out.pixels.data(), cmyk_row.data())) {
    return Invalid(absl::StrCat("cannot decode JPEG: ", job.err.message));
  }
  return out;
}

// --- PNG (libpng) -------------------------------------------------------------

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const unsigned char* data = nullptr;
  size_t size = 0;
  size_t offset = 0;
  char message[256] = {0};
  ~PngReader() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

void PngRead(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<PngReader*>(png_get_io_ptr(png));
  if (length > reader->size - reader->offset) png_error(png, "PNG data is truncated");
  std::memcpy(out, reader->data + reader->offset, length);
  reader->offset += length;
}

void PngError(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->message, sizeof reader->message, "%s", message);
  png_longjmp(png, 1);
}

void PngWarning(png_structp, png_const_charp) {}

struct PngLayout {
  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int channels = 0;   // after the transforms: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  int bit_depth = 0;  // after the transforms: 8 or 16
  size_t row_bytes = 0;
};

// Reads the header and sets OpenCV's transforms: palette -> RGB, grey of
// 1/2/4 bits -> 8, Adam7 deinterlacing. No gamma, no compositing: alpha is
// dropped later, as OpenCV's 4-channel result minus its alpha.
bool PngReadHeader(PngReader& r, PngLayout& layout) {
  if (setjmp(png_jmpbuf(r.png)) != 0) return false;
  png_set_read_fn(r.png, &r, PngRead);
  png_read_info(r.png, r.info);
  int bit_depth = 0;
  int color_type = 0;
  png_get_IHDR(r.png, r.info, &layout.width, &layout.height, &bit_depth, &color_type, nullptr,
               nullptr, nullptr);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(r.png);
  }
  png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);
  layout.channels = png_get_channels(r.png, r.info);
  layout.bit_depth = png_get_bit_depth(r.png, r.info);
  layout.row_bytes = png_get_rowbytes(r.png, r.info);
  return true;
}

bool PngReadRows(PngReader& r, png_bytep* rows) {
  if (setjmp(png_jmpbuf(r.png)) != 0) return false;
  png_read_image(r.png, rows);
  png_read_end(r.png, nullptr);
  return true;
}

absl::StatusOr<RgbImage> DecodePng(absl::string_view bytes, int64_t max_pixels) {
  PngReader r;
  r.data = reinterpret_cast<const unsigned char*>(bytes.data());
  r.size = bytes.size();
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, PngError, PngWarning);
  if (r.png == nullptr) return absl::ResourceExhaustedError("out of memory decoding PNG");
  r.info = png_create_info_struct(r.png);
  if (r.info == nullptr) return absl::ResourceExhaustedError("out of memory decoding PNG");
  // libpng's default limits stay (1,000,000 pixels a side): OpenCV keeps
  // them too, and the pixel budget is checked below.
  PngLayout layout;
  if (!PngReadHeader(r, layout)) return Invalid(absl::StrCat("cannot decode PNG: ", r.message));
  const int64_t width = layout.width;
  const int64_t height = layout.height;
  if (width * height > max_pixels) return TooLarge(width, height, max_pixels);
  if (layout.channels < 1 || layout.channels > 4 ||
      (layout.bit_depth != 8 && layout.bit_depth != 16)) {
    return Invalid(absl::StrCat("cannot decode PNG with ", layout.channels, " channels of ",
                                layout.bit_depth, " bits"));
  }
  std::vector<png_byte> buffer;
  std::vector<png_bytep> rows;
  RgbImage out;
  try {
    buffer.resize(layout.row_bytes * static_cast<size_t>(height));
    rows.resize(static_cast<size_t>(height));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory decoding PNG");
  }
  if (absl::Status s = Allocate(out, width, height, ImageFormat::kPng); !s.ok()) return s;
  for (int64_t y = 0; y < height; ++y) rows[y] = buffer.data() + layout.row_bytes * y;
  if (!PngReadRows(r, rows.data())) return Invalid(absl::StrCat("cannot decode PNG: ", r.message));
  const int channels = layout.channels;
  const bool grey = channels <= 2;
  const bool wide = layout.bit_depth == 16;
  for (int64_t y = 0; y < height; ++y) {
    const png_byte* in = rows[y];
    uint8_t* o = out.pixels.data() + static_cast<size_t>(y) * width * 3;
    for (int64_t x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int source = grey ? 0 : c;
        uint8_t v;
        if (wide) {
          // Big-endian 16-bit, scaled by 1/257 and rounded (no ties occur).
          const unsigned s = (unsigned{in[2 * (x * channels + source)]} << 8) |
                             in[2 * (x * channels + source) + 1];
          v = static_cast<uint8_t>((2 * s + 257) / 514);
        } else {
          v = in[x * channels + source];
        }
        o[3 * x + c] = v;
      }
    }
  }
  return out;
}

// --- WebP (libwebp) -----------------------------------------------------------

absl::StatusOr<RgbImage> DecodeWebp(absl::string_view bytes, int64_t max_pixels) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, bytes.size(), &features) != VP8_STATUS_OK) {
    return Invalid("cannot decode WebP data (corrupt or truncated)");
  }
  if (features.has_animation) return Invalid("cannot decode WebP: animated WebP is not supported");
  const int64_t width = features.width;
  const int64_t height = features.height;
  if (width * height > max_pixels) return TooLarge(width, height, max_pixels);
  RgbImage out;
  if (absl::Status s = Allocate(out, width, height, ImageFormat::kWebp); !s.ok()) return s;
  // RGB straight from the decoder: the same colour values OpenCV's BGR(A)
  // decode gives (alpha, not premultiplied, is a separate plane).
  if (WebPDecodeRGBInto(data, bytes.size(), out.pixels.data(), out.pixels.size(),
                        static_cast<int>(width) * 3) == nullptr) {
    return Invalid("cannot decode WebP data (corrupt or truncated)");
  }
  return out;
}

absl::StatusOr<RgbImage> Decode(absl::string_view bytes, const ImageInfo& info,
                                int64_t max_pixels) {
  switch (info.format) {
    case ImageFormat::kJpeg:
      return DecodeJpeg(bytes, max_pixels);
    case ImageFormat::kPng:
      return DecodePng(bytes, max_pixels);
    case ImageFormat::kWebp:
      return DecodeWebp(bytes, max_pixels);
    case ImageFormat::kBmp:
      return DecodeUncompressedBmp(bytes, max_pixels);
  }
  return Invalid("unknown image format");
}

// --- Encoders (tests and demo data) --------------------------------------

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string* out = nullptr;
  char message[256] = {0};
  ~PngWriter() {
    if (png != nullptr) png_destroy_write_struct(&png, info != nullptr ? &info : nullptr);
  }
};

void PngWrite(png_structp png, png_bytep data, png_size_t length) {
  auto* w = static_cast<PngWriter*>(png_get_io_ptr(png));
  w->out->append(reinterpret_cast<const char*>(data), length);
}
void PngFlush(png_structp) {}
void PngWriteError(png_structp png, png_const_charp message) {
  auto* w = static_cast<PngWriter*>(png_get_error_ptr(png));
  std::snprintf(w->message, sizeof w->message, "%s", message);
  png_longjmp(png, 1);
}

bool PngWriteAll(PngWriter& w, const RgbImage& image, png_bytep* rows) {
  if (setjmp(png_jmpbuf(w.png)) != 0) return false;
  png_set_write_fn(w.png, &w, PngWrite, PngFlush);
  png_set_IHDR(w.png, w.info, image.width, image.height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w.png, w.info);
  png_write_image(w.png, rows);
  png_write_end(w.png, nullptr);
  return true;
}

absl::StatusOr<std::string> EncodePngImpl(const RgbImage& image) {
  std::string out;
  PngWriter w;
  w.out = &out;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, PngWriteError, PngWarning);
  if (w.png == nullptr) return absl::ResourceExhaustedError("out of memory encoding PNG");
  w.info = png_create_info_struct(w.png);
  if (w.info == nullptr) return absl::ResourceExhaustedError("out of memory encoding PNG");
  std::vector<png_bytep> rows(static_cast<size_t>(image.height));
  for (int y = 0; y < image.height; ++y) {
    rows[y] = const_cast<png_bytep>(image.pixels.data()) + size_t(y) * image.width * 3;
  }
  if (!PngWriteAll(w, image, rows.data())) {
    return absl::InternalError(absl::StrCat("encoding PNG: ", w.message));
  }
  return out;
}

struct JpegWriter {
  jpeg_compress_struct cinfo;
  JpegError err;
  bool created = false;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  ~JpegWriter() {
    if (created) jpeg_destroy_compress(&cinfo);
    std::free(buffer);
  }
};

// Baseline JPEG with libjpeg's defaults (4:2:0) at `quality`, as OpenCV's
// encoder writes it.
bool JpegWriteAll(JpegWriter& w, const RgbImage& image, int quality) {
  w.cinfo.err = jpeg_std_error(&w.err.mgr);
  w.err.mgr.error_exit = JpegErrorExit;
  w.err.mgr.output_message = JpegQuietMessage;
  if (setjmp(w.err.jump) != 0) return false;
  jpeg_create_compress(&w.cinfo);
  w.created = true;
  jpeg_mem_dest(&w.cinfo, &w.buffer, &w.size);
  w.cinfo.image_width = image.width;
  w.cinfo.image_height = image.height;
  w.cinfo.input_components = 3;
  w.cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&w.cinfo);
  jpeg_set_quality(&w.cinfo, quality, TRUE);
  jpeg_start_compress(&w.cinfo, TRUE);
  while (w.cinfo.next_scanline < w.cinfo.image_height) {
    JSAMPROW row =
        const_cast<JSAMPROW>(image.pixels.data()) + size_t(w.cinfo.next_scanline) * image.width * 3;
    jpeg_write_scanlines(&w.cinfo, &row, 1);
  }
  jpeg_finish_compress(&w.cinfo);
  return true;
}

absl::StatusOr<std::string> EncodeJpegImpl(const RgbImage& image, int quality) {
  JpegWriter w;
  if (!JpegWriteAll(w, image, quality)) {
    return absl::InternalError(absl::StrCat("encoding JPEG: ", w.err.message));
  }
  return std::string(reinterpret_cast<const char*>(w.buffer), w.size);
}

}  // namespace

const PixelCodec& NativePixelCodec() {
  static constexpr PixelCodec kCodec{"native", &Decode, &EncodePngImpl, &EncodeJpegImpl};
  return kCodec;
}

}  // namespace provp::image
