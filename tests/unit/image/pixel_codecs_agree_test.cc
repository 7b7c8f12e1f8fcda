// The native pixel codec (libjpeg-turbo, libpng, libwebp, BMP read by hand)
// gives what the OpenCV codec gives, through image_io's checks: the same
// pixels for every variant of the four formats the server accepts, and the
// same verdict (accepted or refused) on truncated and bit-flipped copies of
// them. The one documented difference: RLE BMP, which only OpenCV reads.
// (OS/2 1.x BMPs go through the same hand-written reader in both: OpenCV
// would read them as grey.)
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/image/image_io.h"
#include "core/image/pixel_codec.h"
#include "tests/testing/status_matchers.h"

namespace provp::image {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

struct Case {
  std::string name;
  std::string bytes;
};

// Smooth gradients plus noise in every channel; `channels` 1, 3 or 4;
// `depth` CV_8U or CV_16U.
cv::Mat Picture(int width, int height, int channels, int depth = CV_8U, uint32_t seed = 7) {
  cv::Mat m(height, width, CV_MAKETYPE(depth, channels));
  std::mt19937 rng(seed);
  const int top = depth == CV_16U ? 65535 : 255;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        const int base =
            (x * (c + 1) * top / std::max(1, width) + y * top / std::max(1, height)) % (top + 1);
        const int v = std::clamp(base + int(rng() % 31) - 15, 0, top);
        if (depth == CV_16U) {
          m.ptr<uint16_t>(y)[x * channels + c] = uint16_t(v);
        } else {
          m.ptr<uint8_t>(y)[x * channels + c] = uint8_t(v);
        }
      }
    }
  }
  return m;
}

std::string CvEncode(const cv::Mat& m, const std::string& ext,
                     const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, m, buf, params)) << ext;
  return std::string(buf.begin(), buf.end());
}

// --- PNG variants OpenCV cannot write (palette, low bit depths, Adam7) ---

void PngAppend(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}
void PngNoFlush(png_structp) {}

// Rows are packed as libpng expects for (bit_depth, color_type).
std::string WritePng(int width, int height, int bit_depth, int color_type,
                     const std::vector<std::vector<uint8_t>>& rows, int interlace,
                     const std::vector<png_color>& palette = {},
                     const std::vector<uint8_t>& palette_alpha = {}, bool gamma = false,
                     const png_color_16* trans_color = nullptr) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    ADD_FAILURE() << "libpng failed writing a test image";
    return "";
  }
  png_set_write_fn(png, &out, PngAppend, PngNoFlush);
  png_set_IHDR(png, info, width, height, bit_depth, color_type, interlace,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), int(palette.size()));
  if (!palette_alpha.empty()) {
    png_set_tRNS(png, info, palette_alpha.data(), int(palette_alpha.size()), nullptr);
  }
  if (trans_color != nullptr) png_set_tRNS(png, info, nullptr, 0, trans_color);
  if (gamma) png_set_gAMA(png, info, 1.0 / 2.2);
  png_write_info(png, info);
  std::vector<png_bytep> pointers;
  for (const auto& r : rows) pointers.push_back(const_cast<png_bytep>(r.data()));
  png_write_image(png, pointers.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// Index or grey rows of `bits` per sample, values cycling through 0..2^bits-1.
std::vector<std::vector<uint8_t>> PackedRows(int width, int height, int bits, int samples = 1) {
  std::vector<std::vector<uint8_t>> rows;
  const int top = (1 << bits) - 1;
  for (int y = 0; y < height; ++y) {
    std::vector<uint8_t> row((size_t(width) * samples * bits + 7) / 8, 0);
    for (int i = 0; i < width * samples; ++i) {
      const int v = (i * 5 + y * 3) % (top + 1);
      if (bits == 16) {
        const int w = (v * 977 + y) & 0xffff;
        row[2 * i] = uint8_t(w >> 8);
        row[2 * i + 1] = uint8_t(w & 0xff);
      } else {
        const int bit = i * bits;
        row[bit / 8] |= uint8_t(v << (8 - bits - bit % 8));
      }
    }
    rows.push_back(row);
  }
  return rows;
}

std::vector<png_color> Palette(int entries) {
  std::vector<png_color> p;
  for (int i = 0; i < entries; ++i) {
    p.push_back({uint8_t(i * 37), uint8_t(255 - i * 11), uint8_t(i * 91)});
  }
  return p;
}

// --- JPEG variants: CMYK, arithmetic coding, progressive, no Huffman tables ---

struct JpegOptions {
  bool cmyk = false;
  bool grey = false;
  bool arithmetic = false;
  bool progressive = false;
  int restart_rows = 0;
  int quality = 85;
};

JpegOptions Jpeg(const std::function<void(JpegOptions&)>& tweak) {
  JpegOptions o;
  tweak(o);
  return o;
}

std::string WriteJpeg(const cv::Mat& pixels, const JpegOptions& o) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = pixels.cols;
  cinfo.image_height = pixels.rows;
  cinfo.input_components = pixels.channels();
  cinfo.in_color_space = o.cmyk ? JCS_CMYK : o.grey ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, o.quality, TRUE);
  cinfo.arith_code = o.arithmetic ? TRUE : FALSE;
  cinfo.restart_in_rows = o.restart_rows;
  if (o.progressive) jpeg_simple_progression(&cinfo);
  if (o.cmyk) jpeg_set_colorspace(&cinfo, JCS_YCCK);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels.ptr<uint8_t>(int(cinfo.next_scanline)));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  std::free(buffer);
  return out;
}

// Drops every DHT segment (Motion-JPEG frames carry none; decoders fall
// back to the standard tables, which this baseline file used anyway).
std::string WithoutHuffmanTables(const std::string& jpeg) {
  std::string out = jpeg.substr(0, 2);
  size_t pos = 2;
  while (pos + 4 <= jpeg.size() && uint8_t(jpeg[pos]) == 0xFF) {
    const uint8_t marker = uint8_t(jpeg[pos + 1]);
    if (marker == 0xDA) break;  // scan: copy the rest
    const size_t length = (size_t(uint8_t(jpeg[pos + 2])) << 8) | uint8_t(jpeg[pos + 3]);
    if (marker != 0xC4) out += jpeg.substr(pos, 2 + length);
    pos += 2 + length;
  }
  return out + jpeg.substr(pos);
}

// --- BMP variants ---------------------------------------------------------

void Le(std::string& s, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(char((v >> (8 * i)) & 0xFF));
}

struct BmpSpec {
  int width = 9;
  int height = 5;  // negative: top-down
  int bpp = 24;
  uint32_t compression = 0;
  std::vector<uint32_t> masks;  // BI_BITFIELDS masks after the header
  int palette_entries = 0;      // stored entries (clrUsed); 0 = none stored
  bool grey_palette = false;
  bool os2 = false;       // 12-byte BITMAPCOREHEADER, 3-byte entries
  int index_limit = 256;  // pixel indices cycle below this
};

std::string WriteBmp(const BmpSpec& spec) {
  const int h = std::abs(spec.height);
  const int bits = spec.bpp;
  const size_t stride = (size_t(spec.width) * bits + 31) / 32 * 4;
  std::string header;
  const int entry = spec.os2 ? 3 : 4;
  const size_t info = spec.os2 ? 12 : 40;
  const size_t offset = 14 + info + spec.masks.size() * 4 + size_t(spec.palette_entries) * entry;
  header += "BM";
  Le(header, uint32_t(offset + stride * h), 4);
  Le(header, 0, 4);
  Le(header, uint32_t(offset), 4);
  if (spec.os2) {
    Le(header, 12, 4);
    Le(header, spec.width, 2);
    Le(header, uint32_t(h), 2);
    Le(header, 1, 2);
    Le(header, bits, 2);
  } else {
    Le(header, 40, 4);
    Le(header, uint32_t(spec.width), 4);
    Le(header, uint32_t(spec.height), 4);
    Le(header, 1, 2);
    Le(header, bits, 2);
    Le(header, spec.compression, 4);
    Le(header, uint32_t(stride * h), 4);
    Le(header, 2835, 4);
    Le(header, 2835, 4);
    Le(header, uint32_t(spec.palette_entries), 4);
    Le(header, 0, 4);
  }
  for (uint32_t m : spec.masks) Le(header, m, 4);
  for (int i = 0; i < spec.palette_entries; ++i) {
    const uint8_t g = uint8_t(i * 255 / std::max(1, spec.palette_entries - 1));
    header.push_back(char(spec.grey_palette ? g : uint8_t(i * 29)));
    header.push_back(char(spec.grey_palette ? g : uint8_t(255 - i * 7)));
    header.push_back(char(spec.grey_palette ? g : uint8_t(i * 113)));
    if (!spec.os2) header.push_back('\0');
  }
  std::mt19937 rng(uint32_t(bits * 131 + spec.width));
  for (int y = 0; y < h; ++y) {
    std::string row(stride, '\0');
    for (int x = 0; x < spec.width; ++x) {
      if (bits <= 8) {
        const int index = int(rng() % uint32_t(std::min(spec.index_limit, 1 << bits)));
        const int bit = x * bits;
        row[bit / 8] = char(uint8_t(row[bit / 8]) | (index << (8 - bits - bit % 8)));
      } else {
        for (int b = 0; b < bits / 8; ++b) row[x * (bits / 8) + b] = char(rng() & 0xFF);
      }
    }
    header += row;
  }
  return header;
}

std::vector<Case> Corpus() {
  std::vector<Case> cases;
  auto add = [&](std::string name, std::string bytes) {
    cases.push_back({std::move(name), std::move(bytes)});
  };
  for (auto [w, h] : {std::pair{1, 1}, {7, 5}, {33, 17}, {64, 48}}) {
    const std::string size = absl::StrCat(w, "x", h);
    const cv::Mat bgr = Picture(w, h, 3);
    const cv::Mat grey = Picture(w, h, 1);
    const cv::Mat bgra = Picture(w, h, 4);
    add("jpeg_q90_" + size, CvEncode(bgr, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90}));
    add("jpeg_q100_" + size, CvEncode(bgr, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 100}));
    add("jpeg_grey_" + size, CvEncode(grey, ".jpg"));
    add("jpeg_progressive_" + size, CvEncode(bgr, ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
    add("jpeg_optimized_" + size, CvEncode(bgr, ".jpg", {cv::IMWRITE_JPEG_OPTIMIZE, 1}));
    add("jpeg_restarts_" + size, CvEncode(bgr, ".jpg", {cv::IMWRITE_JPEG_RST_INTERVAL, 2}));
    add("jpeg_444_" + size,
        CvEncode(bgr, ".jpg",
                 {cv::IMWRITE_JPEG_LUMA_QUALITY, 80, cv::IMWRITE_JPEG_CHROMA_QUALITY, 60}));
    add("jpeg_no_huffman_tables_" + size, WithoutHuffmanTables(CvEncode(bgr, ".jpg")));
    add("jpeg_cmyk_" + size, WriteJpeg(bgra, Jpeg([](JpegOptions& o) { o.cmyk = true; })));
    add("jpeg_arithmetic_" + size,
        WriteJpeg(Picture(w, h, 3), Jpeg([](JpegOptions& o) { o.arithmetic = true; })));
    add("jpeg_progressive_grey_" + size, WriteJpeg(grey, Jpeg([](JpegOptions& o) {
                                                     o.grey = true;
                                                     o.progressive = true;
                                                   })));
    add("png_rgb_" + size, CvEncode(bgr, ".png"));
    add("png_rgba_" + size, CvEncode(bgra, ".png"));
    add("png_grey_" + size, CvEncode(grey, ".png"));
    add("png_rgb16_" + size, CvEncode(Picture(w, h, 3, CV_16U), ".png"));
    add("png_rgba16_" + size, CvEncode(Picture(w, h, 4, CV_16U), ".png"));
    add("png_grey16_" + size, CvEncode(Picture(w, h, 1, CV_16U), ".png"));
    for (int bits : {1, 2, 4, 8}) {
      const int entries = 1 << bits;
      add(absl::StrCat("png_palette", bits, "_", size),
          WritePng(w, h, bits, PNG_COLOR_TYPE_PALETTE, PackedRows(w, h, bits), PNG_INTERLACE_NONE,
                   Palette(entries)));
      std::vector<uint8_t> alpha(size_t(entries), 0);
      for (int i = 0; i < entries; ++i) alpha[i] = uint8_t(i * 53);
      add(absl::StrCat("png_palette", bits, "_trns_", size),
          WritePng(w, h, bits, PNG_COLOR_TYPE_PALETTE, PackedRows(w, h, bits), PNG_INTERLACE_NONE,
                   Palette(entries), alpha));
      add(absl::StrCat("png_grey", bits, "_", size),
          WritePng(w, h, bits, PNG_COLOR_TYPE_GRAY, PackedRows(w, h, bits), PNG_INTERLACE_NONE));
    }
    png_color_16 key{};
    key.gray = 3;
    key.red = 10;
    key.green = 20;
    key.blue = 30;
    add("png_grey4_trns_" + size, WritePng(w, h, 4, PNG_COLOR_TYPE_GRAY, PackedRows(w, h, 4),
                                           PNG_INTERLACE_NONE, {}, {}, false, &key));
    add("png_rgb8_trns_" + size, WritePng(w, h, 8, PNG_COLOR_TYPE_RGB, PackedRows(w, h, 8, 3),
                                          PNG_INTERLACE_NONE, {}, {}, false, &key));
    add("png_grey_alpha8_" + size,
        WritePng(w, h, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PackedRows(w, h, 8, 2), PNG_INTERLACE_NONE));
    add("png_grey_alpha16_" + size,
        WritePng(w, h, 16, PNG_COLOR_TYPE_GRAY_ALPHA, PackedRows(w, h, 16, 2), PNG_INTERLACE_NONE));
    add("png_grey_gamma_" + size, WritePng(w, h, 8, PNG_COLOR_TYPE_GRAY, PackedRows(w, h, 8),
                                           PNG_INTERLACE_NONE, {}, {}, true));
    add("png_rgb_gamma_" + size, WritePng(w, h, 8, PNG_COLOR_TYPE_RGB, PackedRows(w, h, 8, 3),
                                          PNG_INTERLACE_NONE, {}, {}, true));
    add("png_rgb_adam7_" + size,
        WritePng(w, h, 8, PNG_COLOR_TYPE_RGB, PackedRows(w, h, 8, 3), PNG_INTERLACE_ADAM7));
    add("png_palette2_adam7_" + size, WritePng(w, h, 2, PNG_COLOR_TYPE_PALETTE, PackedRows(w, h, 2),
                                               PNG_INTERLACE_ADAM7, Palette(4)));
    add("webp_lossy_" + size, CvEncode(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}));
    add("webp_lossless_" + size, CvEncode(bgr, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
    add("webp_lossy_alpha_" + size, CvEncode(bgra, ".webp", {cv::IMWRITE_WEBP_QUALITY, 70}));
    add("webp_lossless_alpha_" + size, CvEncode(bgra, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
    add("bmp_opencv_rgb_" + size, CvEncode(bgr, ".bmp"));
    add("bmp_opencv_grey_" + size, CvEncode(grey, ".bmp"));
    // A BMP of this size and depth, adjusted by `tweak`.
    auto bmp = [&](int bpp, const std::function<void(BmpSpec&)>& tweak) {
      BmpSpec spec;
      spec.width = w;
      spec.height = h;
      spec.bpp = bpp;
      if (tweak) tweak(spec);
      return WriteBmp(spec);
    };
    for (int bits : {1, 4, 8}) {
      add(absl::StrCat("bmp_palette", bits, "_", size),
          bmp(bits, [&](BmpSpec& b) { b.palette_entries = 1 << bits; }));
      add(absl::StrCat("bmp_grey_palette", bits, "_", size), bmp(bits, [&](BmpSpec& b) {
            b.palette_entries = 1 << bits;
            b.grey_palette = true;
          }));
      add(absl::StrCat("bmp_os2_palette", bits, "_", size), bmp(bits, [&](BmpSpec& b) {
            b.palette_entries = 1 << bits;
            b.os2 = true;
          }));
    }
    // Indices past the two stored entries read as black.
    add("bmp_palette8_short_" + size, bmp(8, [](BmpSpec& b) {
          b.palette_entries = 2;
          b.index_limit = 6;
        }));
    add("bmp_rgb555_" + size, bmp(16, nullptr));
    add("bmp_bitfields555_" + size, bmp(16, [](BmpSpec& b) {
          b.compression = 3;
          b.masks = {0x7c00, 0x3e0, 0x1f};
        }));
    add("bmp_bitfields565_" + size, bmp(16, [](BmpSpec& b) {
          b.compression = 3;
          b.masks = {0xf800, 0x7e0, 0x1f};
        }));
    add("bmp_rgb24_top_down_" + size, bmp(24, [](BmpSpec& b) { b.height = -b.height; }));
    add("bmp_rgb32_" + size, bmp(32, nullptr));
    add("bmp_bitfields32_" + size, bmp(32, [](BmpSpec& b) {
          b.compression = 3;
          b.masks = {0xff0000, 0xff00, 0xff};
        }));
    add("bmp_os2_rgb24_" + size, bmp(24, [](BmpSpec& b) { b.os2 = true; }));
  }
  return cases;
}

std::string Describe(const absl::StatusOr<RgbImage>& r) {
  return r.ok() ? absl::StrCat("OK ", r->width, "x", r->height) : r.status().ToString();
}

// Both codecs agree on `bytes`: the same verdict and, when accepted, the
// same pixels. Returns a description of the first difference, or "".
std::string Compare(const std::string& bytes) {
  DecodeOptions options;
  options.max_pixels = 1 << 20;
  const absl::StatusOr<RgbImage> a = DecodeImageWith(OpenCvPixelCodec(), bytes, options);
  const absl::StatusOr<RgbImage> b = DecodeImageWith(NativePixelCodec(), bytes, options);
  if (a.ok() != b.ok()) return absl::StrCat("opencv: ", Describe(a), "; native: ", Describe(b));
  if (!a.ok()) {
    if (a.status().code() != b.status().code()) {
      return absl::StrCat("opencv: ", Describe(a), "; native: ", Describe(b));
    }
    return "";
  }
  if (a->width != b->width || a->height != b->height) {
    return absl::StrCat("sizes differ: opencv ", Describe(a), ", native ", Describe(b));
  }
  for (size_t i = 0; i < a->pixels.size(); ++i) {
    if (a->pixels[i] != b->pixels[i]) {
      const size_t pixel = i / 3;
      return absl::StrCat("pixel (", pixel % a->width, ",", pixel / a->width, ") channel ", i % 3,
                          ": opencv ", int(a->pixels[i]), ", native ", int(b->pixels[i]));
    }
  }
  return "";
}

TEST(PixelCodecsAgreeTest, EveryVariantDecodesToTheSamePixels) {
  const std::vector<Case> corpus = Corpus();
  ASSERT_GT(corpus.size(), 200u);
  for (const Case& c : corpus) {
    SCOPED_TRACE(c.name);
    ASSERT_FALSE(c.bytes.empty());
    const absl::StatusOr<RgbImage> decoded = DecodeImageWith(NativePixelCodec(), c.bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();  // every variant is a valid image
    EXPECT_EQ(Compare(c.bytes), "");
  }
}

TEST(PixelCodecsAgreeTest, TruncatedAndBitFlippedCopiesGetTheSameVerdict) {
  std::mt19937 rng(20261202);
  int accepted = 0;
  int refused = 0;
  for (const Case& c : Corpus()) {
    std::vector<std::string> variants;
    for (int i = 1; i <= 8; ++i) variants.push_back(c.bytes.substr(0, c.bytes.size() * i / 9));
    for (int i = 0; i < 24; ++i) {
      std::string flipped = c.bytes;
      const int flips = 1 + int(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        flipped[rng() % flipped.size()] ^= char(1 << (rng() % 8));
      }
      variants.push_back(flipped);
    }
    for (size_t v = 0; v < variants.size(); ++v) {
      const std::string diff = Compare(variants[v]);
      EXPECT_EQ(diff, "") << c.name << " variant " << v;
      const bool ok = DecodeImageWith(NativePixelCodec(), variants[v]).ok();
      (ok ? accepted : refused)++;
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(refused, 100);
}

TEST(PixelCodecsAgreeTest, RleBmpIsReadByOpenCvOnly) {
  // 4x2 RLE8: each row is one run of four pixels of index 1, then
  // end-of-line; end-of-bitmap at the end.
  BmpSpec spec;
  spec.width = 4;
  spec.height = 2;
  spec.bpp = 8;
  spec.compression = 1;
  spec.palette_entries = 2;
  std::string bmp = WriteBmp(spec);
  const size_t offset = 14 + 40 + 2 * 4;
  bmp.resize(offset);
  bmp += std::string("\x04\x01\x00\x00\x04\x01\x00\x01", 8);
  const absl::StatusOr<RgbImage> opencv = DecodeImageWith(OpenCvPixelCodec(), bmp);
  ASSERT_TRUE(opencv.ok()) << opencv.status();
  EXPECT_EQ(opencv->width, 4);
  EXPECT_THAT(DecodeImageWith(NativePixelCodec(), bmp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("run-length")));
}

// For a 32-bit BI_BITFIELDS BMP whose info header claims 56 bytes or more,
// OpenCV 4.6 reads the four channel masks at file offsets 54..69 and refuses
// the file when they are cut off, wherever the pixel data lies. Found by the
// image_codecs_agree fuzzer (fuzz/regressions/image_codecs_agree/): the
// native reader took it.
TEST(PixelCodecsAgreeTest, CutOffChannelMasksAreRefusedLikeOpenCv) {
  // 2x1, pixel data at offset 0 (inside the header): 50 bytes hold the
  // 40-byte fields and the pixels, not the masks.
  auto make = [](uint32_t header_size, size_t file_size) {
    std::string bmp("BM", 2);
    Le(bmp, uint32_t(file_size), 4);
    Le(bmp, 0, 4);
    Le(bmp, 0, 4);  // pixel data offset
    Le(bmp, header_size, 4);
    Le(bmp, 2, 4);
    Le(bmp, 1, 4);
    Le(bmp, 1, 2);
    Le(bmp, 32, 2);
    Le(bmp, 3, 4);  // BI_BITFIELDS
    bmp.resize(file_size, '\x07');
    return bmp;
  };
  for (const uint32_t header : {40u, 52u, 55u, 56u, 108u, 124u, 217u}) {
    for (const size_t size : {size_t{50}, size_t{69}, size_t{70}, size_t{200}}) {
      SCOPED_TRACE(absl::StrCat("info header ", header, ", ", size, " bytes"));
      const std::string bmp = make(header, size);
      EXPECT_EQ(Compare(bmp), "");
      const bool masks_cut_off = header >= 56 && size < 70;
      EXPECT_EQ(DecodeImageWith(NativePixelCodec(), bmp).ok(), !masks_cut_off);
    }
  }
  // The fuzzer's input itself (50 bytes: info header size 217, pixel data
  // at offset 0).
  const unsigned char found[] = {
      0x42, 0x4d, 0x46, 0x04, 0x00, 0x46, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0xd9, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
      0x01, 0x00, 0x20, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x2e, 0x3a, 0x2f, 0x29,
      0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00,
  };
  static_assert(sizeof(found) == 50);
  EXPECT_EQ(Compare(std::string(reinterpret_cast<const char*>(found), sizeof(found))), "");
}

// The masks of a 32-bit BI_BITFIELDS BMP with a V4 (108-byte) header apply
// when all three colour masks are nonzero; a 40-byte header's do not.
TEST(PixelCodecsAgreeTest, ChannelMasksOfLongHeadersApplyLikeOpenCv) {
  struct MaskCase {
    uint32_t header;
    std::array<uint32_t, 4> masks;  // red, green, blue, alpha
    std::vector<uint8_t> rgb;       // of the pixel 0x11223344
  };
  const std::vector<MaskCase> cases = {
      {108, {0xff0000, 0xff00, 0xff, 0xff000000}, {0x22, 0x33, 0x44}},
      {108, {0xff, 0xff00, 0xff0000, 0xff000000}, {0x44, 0x33, 0x22}},  // RGBA order
      {108, {0xff000000, 0xff0000, 0xff00, 0}, {0x11, 0x22, 0x33}},
      {108, {0x7c00, 0x3e0, 0x1f, 0}, {12, 26, 4}},              // 5-5-5: not rescaled
      {108, {0xfff00000, 0xff00, 0xff, 0}, {0x12, 0x33, 0x44}},  // cut to 8 bits
      {108, {0, 0xff00, 0xff, 0}, {0x22, 0x33, 0x44}},           // a zero mask: B, G, R, A
      {40, {0xff, 0xff00, 0xff0000, 0}, {0x22, 0x33, 0x44}},     // short header: B, G, R, A
  };
  for (const MaskCase& c : cases) {
    SCOPED_TRACE(absl::StrCat("header ", c.header, ", red mask ", c.masks[0]));
    std::string bmp("BM", 2);
    const uint32_t offset = 14 + std::max<uint32_t>(c.header, 40 + 16);
    Le(bmp, offset + 4, 4);
    Le(bmp, 0, 4);
    Le(bmp, offset, 4);
    Le(bmp, c.header, 4);
    Le(bmp, 1, 4);
    Le(bmp, 1, 4);
    Le(bmp, 1, 2);
    Le(bmp, 32, 2);
    Le(bmp, 3, 4);
    Le(bmp, 4, 4);
    Le(bmp, 2835, 4);
    Le(bmp, 2835, 4);
    Le(bmp, 0, 4);
    Le(bmp, 0, 4);
    for (uint32_t m : c.masks) Le(bmp, m, 4);  // in a V4 header; after a 40-byte one
    bmp.resize(offset, '\0');
    Le(bmp, 0x11223344, 4);
    EXPECT_EQ(Compare(bmp), "");
    const absl::StatusOr<RgbImage> image = DecodeImageWith(NativePixelCodec(), bmp);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->pixels, c.rgb);
  }
}

// OpenCV 4.6 alone would read OS/2 1.x BMPs as grey; both codecs read them
// in colour (bmp_reader.h).
TEST(PixelCodecsAgreeTest, Os2BmpIsReadInColourByBoth) {
  BmpSpec spec;
  spec.width = 1;
  spec.height = 1;
  spec.bpp = 24;
  spec.os2 = true;
  std::string bmp = WriteBmp(spec);
  bmp[26] = 10;  // blue
  bmp[27] = 20;  // green
  bmp[28] = 30;  // red
  for (const PixelCodec* codec : {&OpenCvPixelCodec(), &NativePixelCodec()}) {
    const absl::StatusOr<RgbImage> image = DecodeImageWith(*codec, bmp);
    ASSERT_TRUE(image.ok()) << codec->name << ": " << image.status();
    EXPECT_EQ(image->pixels, (std::vector<uint8_t>{30, 20, 10})) << codec->name;
  }
}

TEST(PixelCodecsAgreeTest, NativeEncodersRoundTrip) {
  RgbImage image;
  image.width = 21;
  image.height = 13;
  const cv::Mat bgr = Picture(image.width, image.height, 3);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      for (int c = 0; c < 3; ++c) {
        image.pixels.push_back(bgr.ptr<uint8_t>(y)[3 * x + 2 - c]);
      }
    }
  }
  const absl::StatusOr<std::string> png = NativePixelCodec().encode_png(image);
  ASSERT_TRUE(png.ok()) << png.status();
  const absl::StatusOr<RgbImage> back = DecodeImageWith(OpenCvPixelCodec(), *png);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pixels, image.pixels);
  // OpenCV and the native encoder write JPEG with the same libjpeg settings.
  const absl::StatusOr<std::string> jpeg = NativePixelCodec().encode_jpeg(image, 90);
  const absl::StatusOr<std::string> cv_jpeg = OpenCvPixelCodec().encode_jpeg(image, 90);
  ASSERT_TRUE(jpeg.ok() && cv_jpeg.ok());
  const absl::StatusOr<RgbImage> a = DecodeImageWith(NativePixelCodec(), *jpeg);
  const absl::StatusOr<RgbImage> b = DecodeImageWith(NativePixelCodec(), *cv_jpeg);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->pixels, b->pixels);
}

}  // namespace
}  // namespace provp::image
