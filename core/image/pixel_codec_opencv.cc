// The OpenCV PixelCodec (pixel_codec.h): cv::imdecode with IMREAD_UNCHANGED,
// then conversion to packed 8-bit RGB (OS/2 1.x BMPs excepted: bmp_reader.h).
// The default codec of the full build.
// Thread-safe: cv::imdecode/imencode are reentrant.
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/image/bmp_reader.h"
#include "core/image/pixel_codec.h"
#include "core/util/error_reason.h"
#include "core/util/status_macros.h"

namespace provp::image {
namespace {

// OpenCV's parallel_for_ (inside imdecode and cvtColor) keeps a little state
// for every thread that calls it and never frees it when the thread ends:
// 10,000 short-lived threads each decoding one JPEG grew RSS by 8.3 MB
// (~850 bytes a thread), and not at all with cv::setNumThreads(0)
// (bench/soak/decode_thread_churn). A server's threads come and go (gRPC's
// sync-server threads, StreamClassify workers: ~600 a minute in the soak),
// which made the soak's slow RSS creep. Images are decoded in parallel by
// the server's own threads anyway (the preprocessing pool), and OpenCV's
// pool would only compete with LibTorch's for the cores: OpenCV runs on the
// calling thread alone. Once per process, before the first OpenCV call.
void RunOpenCvOnCallingThreads() {
  static const bool done = [] {
    cv::setNumThreads(0);
    return true;
  }();
  (void)done;
}

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

// Converts whatever imdecode(IMREAD_UNCHANGED) produced to packed 8-bit RGB.
absl::StatusOr<RgbImage> ToRgb(const cv::Mat& decoded) {
  cv::Mat eight;
  switch (decoded.depth()) {
    case CV_8U:
      eight = decoded;
      break;
    case CV_16U:
      // 65535 -> 255 exactly; convertTo rounds to nearest.
      decoded.convertTo(eight, CV_8U, 1.0 / 257.0);
      break;
    default:
      return Invalid(absl::StrCat("unsupported sample depth (OpenCV depth ", decoded.depth(), ")"));
  }
  cv::Mat rgb;
  switch (eight.channels()) {
    case 1:
      cv::cvtColor(eight, rgb, cv::COLOR_GRAY2RGB);
      break;
    case 2: {  // gray + alpha: keep the gray plane
      cv::Mat gray;
      cv::extractChannel(eight, gray, 0);
      cv::cvtColor(gray, rgb, cv::COLOR_GRAY2RGB);
      break;
    }
    case 3:
      cv::cvtColor(eight, rgb, cv::COLOR_BGR2RGB);
      break;
    case 4:
      cv::cvtColor(eight, rgb, cv::COLOR_BGRA2RGB);
      break;
    default:
      return Invalid(absl::StrCat("unsupported channel count ", eight.channels()));
  }
  RgbImage out;
  out.height = rgb.rows;
  out.width = rgb.cols;
  out.pixels.resize(static_cast<size_t>(rgb.rows) * rgb.cols * 3);
  cv::Mat dst(rgb.rows, rgb.cols, CV_8UC3, out.pixels.data());
  rgb.copyTo(dst);  // dst keeps its buffer: same size and type
  return out;
}

absl::StatusOr<RgbImage> Decode(absl::string_view bytes, const ImageInfo& info,
                                int64_t max_pixels) {
  RunOpenCvOnCallingThreads();
  // OpenCV 4.6 decodes OS/2 1.x BMPs as grey; they are read in colour here.
  if (info.format == ImageFormat::kBmp && IsOs2Bmp(bytes)) {
    return DecodeUncompressedBmp(bytes, max_pixels);
  }
  cv::Mat decoded;
  try {
    // imdecode never writes to its input; the Mat header only wraps it.
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    decoded = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot decode ", FormatName(info.format), ": ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory decoding ", FormatName(info.format)));
  }
  if (decoded.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot decode ", FormatName(info.format), " data (corrupt or truncated)"));
  }
  // The decoder may disagree with our header reading (e.g. a JPEG with two
  // frame headers); never return more than the budget either way.
  if (int64_t{decoded.rows} * decoded.cols > max_pixels) {
    return util::WithErrorReason(absl::InvalidArgumentError(absl::StrCat(
                                     "decoded image of ", decoded.cols, "x", decoded.rows,
                                     " exceeds the limit of ", max_pixels, " pixels")),
                                 util::kReasonImageTooLarge);
  }
  try {
    return ToRgb(decoded);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("converting to RGB: ", e.what()));
  }
}

absl::StatusOr<std::string> Encode(const RgbImage& image, const char* ext,
                                   const std::vector<int>& params) {
  RunOpenCvOnCallingThreads();
  // cv::Mat only wraps the buffer; cvtColor writes a new one.
  const cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.pixels.data()));
  std::vector<uchar> buf;
  try {
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    if (!cv::imencode(ext, bgr, buf, params)) {
      return absl::InternalError(absl::StrCat("OpenCV could not encode ", ext));
    }
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("encoding ", ext, ": ", e.what()));
  }
  return std::string(buf.begin(), buf.end());
}

absl::StatusOr<std::string> EncodePngImpl(const RgbImage& image) {
  return Encode(image, ".png", {});
}

absl::StatusOr<std::string> EncodeJpegImpl(const RgbImage& image, int quality) {
  return Encode(image, ".jpg", {cv::IMWRITE_JPEG_QUALITY, quality});
}

}  // namespace

const PixelCodec& OpenCvPixelCodec() {
  static constexpr PixelCodec kCodec{"opencv", &Decode, &EncodePngImpl, &EncodeJpegImpl};
  return kCodec;
}

}  // namespace provp::image
