// IDX parsing with zlib's gz reader (it reads plain files transparently),
// with every size checked against fixed caps before anything is allocated.
#include "core/builtin/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"

namespace provp::builtin {
namespace {

constexpr int64_t kMaxItems = 1000000;
constexpr int kMaxSide = 256;

struct GzCloser {
  void operator()(gzFile_s* f) const {
    if (f) gzclose(f);
  }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

absl::StatusOr<GzFile> OpenGz(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("Fashion-MNIST file ", path,
                                            " not found (install the Debian package "
                                            "dataset-fashion-mnist)"));
  }
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  return f;
}

absl::Status ReadExact(gzFile_s* f, void* dst, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
    const int got = gzread(f, static_cast<char*>(dst) + done, chunk);
    if (got <= 0) {
      return absl::DataLossError(
          absl::StrCat(path, ": truncated or corrupt (wanted ", n, " bytes, got ", done, ")"));
    }
    done += static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> ReadU32(gzFile_s* f, const std::string& path) {
  uint8_t b[4];
  if (absl::Status s = ReadExact(f, b, 4, path); !s.ok()) return s;
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

std::string FindFile(const std::string& dir, const std::string& stem) {
  const std::string gz = dir + "/" + stem + ".gz";
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  const std::string plain = dir + "/" + stem;
  if (std::filesystem::exists(plain, ec)) return plain;
  return gz;
}

// Bilinear sample of a rows x cols byte image at (y, x), 0 outside.
double Sample(const uint8_t* img, int rows, int cols, double y, double x) {
  const int x0 = static_cast<int>(std::floor(x));
  const int y0 = static_cast<int>(std::floor(y));
  const double tx = x - x0;
  const double ty = y - y0;
  auto g = [&](int yy, int xx) -> double {
    if (yy < 0 || yy >= rows || xx < 0 || xx >= cols) return 0.0;
    return img[yy * cols + xx];
  };
  return (g(y0, x0) * (1 - tx) + g(y0, x0 + 1) * tx) * (1 - ty) +
         (g(y0 + 1, x0) * (1 - tx) + g(y0 + 1, x0 + 1) * tx) * ty;
}

double Luma(const Color& c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; }

Color RandomColor(Random& rng, double lo, double hi) {
  // A random saturated-ish colour with luma in [lo, hi] (x255), by rejection.
  for (int i = 0; i < 64; ++i) {
    Color c{static_cast<float>(rng.Uniform(0, 255)), static_cast<float>(rng.Uniform(0, 255)),
            static_cast<float>(rng.Uniform(0, 255))};
    const double l = Luma(c) / 255;
    if (l >= lo && l <= hi) return c;
  }
  const float v = static_cast<float>((lo + hi) / 2 * 255);
  return {v, v, v};
}

}  // namespace

absl::StatusOr<FashionMnist> LoadFashionMnist(const std::string& dir, bool train, int max_items) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = FindFile(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = FindFile(dir, prefix + "-labels-idx1-ubyte");
  FashionMnist out;

  auto images_or = OpenGz(images_path);
  if (!images_or.ok()) return images_or.status();
  GzFile images = std::move(*images_or);
  auto magic = ReadU32(images.get(), images_path);
  if (!magic.ok()) return magic.status();
  if (*magic != 0x00000803) {
    return absl::InvalidArgumentError(
        absl::StrCat(images_path, ": bad IDX magic ", *magic, " (expected 2051 for u8 images)"));
  }
  auto n = ReadU32(images.get(), images_path);
  auto rows = ReadU32(images.get(), images_path);
  auto cols = ReadU32(images.get(), images_path);
  if (!n.ok()) return n.status();
  if (!rows.ok()) return rows.status();
  if (!cols.ok()) return cols.status();
  if (*n == 0 || *n > kMaxItems || *rows == 0 || *rows > kMaxSide || *cols == 0 ||
      *cols > kMaxSide) {
    return absl::InvalidArgumentError(absl::StrCat(images_path, ": implausible header (", *n,
                                                   " images of ", *rows, "x", *cols, ")"));
  }

  auto labels_or = OpenGz(labels_path);
  if (!labels_or.ok()) return labels_or.status();
  GzFile labels = std::move(*labels_or);
  auto lmagic = ReadU32(labels.get(), labels_path);
  if (!lmagic.ok()) return lmagic.status();
  if (*lmagic != 0x00000801) {
    return absl::InvalidArgumentError(
        absl::StrCat(labels_path, ": bad IDX magic ", *lmagic, " (expected 2049 for u8 labels)"));
  }
  auto ln = ReadU32(labels.get(), labels_path);
  if (!ln.ok()) return ln.status();
  if (*ln != *n) {
    return absl::InvalidArgumentError(
        absl::StrCat(labels_path, ": ", *ln, " labels but ", images_path, " has ", *n, " images"));
  }

  const int count =
      max_items > 0 ? std::min<int>(max_items, static_cast<int>(*n)) : static_cast<int>(*n);
  out.rows = static_cast<int>(*rows);
  out.cols = static_cast<int>(*cols);
  out.pixels.resize(static_cast<size_t>(count) * out.rows * out.cols);
  out.labels.resize(count);
  if (absl::Status s = ReadExact(images.get(), out.pixels.data(), out.pixels.size(), images_path);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadExact(labels.get(), out.labels.data(), out.labels.size(), labels_path);
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < count; ++i) {
    if (out.labels[i] > 9) {
      return absl::InvalidArgumentError(absl::StrCat(labels_path, ": label ", int{out.labels[i]},
                                                     " of item ", i, " is outside 0..9"));
    }
  }
  return out;
}

std::vector<std::string> FashionClassNames() {
  return {"t-shirt", "trousers", "pullover", "dress", "coat",
          "sandal",  "shirt",    "sneaker",  "bag",   "ankle boot"};
}

std::string FashionCaption(int label, Random& rng) {
  static const std::array<const char*, 10> kNames = {"t-shirt", "trousers",  "pullover", "dress",
                                                     "coat",    "sandal",    "shirt",    "sneaker",
                                                     "bag",     "ankle boot"};
  static const std::array<const char*, 12> kTemplates = {"a photo of a {}",
                                                         "a photo of a {}.",
                                                         "a black and white photo of a {}",
                                                         "a grayscale image of a {}.",
                                                         "a picture of a {}",
                                                         "a {}",
                                                         "a low resolution photo of a {}.",
                                                         "a photo of the {}",
                                                         "a product photo of a {}.",
                                                         "an image of a {}",
                                                         "a small photo of a {}",
                                                         "a blurry photo of a {}."};
  const std::string name = kNames[std::clamp(label, 0, 9)];
  std::string t = kTemplates[rng.Int(static_cast<int>(kTemplates.size()))];
  const size_t at = t.find("{}");
  t.replace(at, 2, name);
  // "a ankle boot" reads wrong; the default zero-shot template still says
  // "a", so keep both forms.
  if (name[0] == 'a' && rng.Bernoulli(0.5)) {
    const size_t pos = t.find("a " + name);
    if (pos != std::string::npos) t.replace(pos, 2, "an ");
  }
  return t;
}

Raster RenderFashion(const uint8_t* pixels, int rows, int cols, int resolution, RenderStyle style,
                     Random& rng) {
  const int res = std::max(resolution, 8);
  Raster out(res, res);
  // The item fills 7/8 of the frame (28 px in 32), shifted by up to a pixel.
  const double side = res * 7.0 / 8.0;
  const double sy = rows / side;
  const double sx = cols / side;
  const double oy = (res - side) / 2 + rng.Uniform(-1.0, 1.0) * res / 32.0;
  const double ox = (res - side) / 2 + rng.Uniform(-1.0, 1.0) * res / 32.0;
  const bool flip = rng.Bernoulli(0.5);

  Color fg{255, 255, 255};
  Color bg_a{0, 0, 0};
  Color bg_b{0, 0, 0};
  double noise_sigma = 0;
  double gradient_angle = 0;
  const bool shifted = style == RenderStyle::kShifted;
  if (shifted) {
    // A tinted garment on a dark, tinted gradient with sensor-like noise:
    // the shapes stay as pretrained, the colours and texture do not.
    fg = RandomColor(rng, 0.55, 1.0);
    bg_a = RandomColor(rng, 0.02, 0.2);
    bg_b = RandomColor(rng, 0.02, 0.2);
    noise_sigma = rng.Uniform(4, 12);
    gradient_angle = rng.Uniform(0, 6.283185307179586);
  }
  const double ga = std::cos(gradient_angle);
  const double gb = std::sin(gradient_angle);
  for (int y = 0; y < res; ++y) {
    for (int x = 0; x < res; ++x) {
      const double src_x = (x + 0.5 - ox) * sx - 0.5;
      const double src_y = (y + 0.5 - oy) * sy - 0.5;
      const double a = Sample(pixels, rows, cols, src_y, flip ? cols - 1 - src_x : src_x) / 255.0;
      const double t =
          std::clamp(0.5 + ((x + 0.5) / res - 0.5) * ga + ((y + 0.5) / res - 0.5) * gb, 0.0, 1.0);
      const double bg[3] = {bg_a.r + (bg_b.r - bg_a.r) * t, bg_a.g + (bg_b.g - bg_a.g) * t,
                            bg_a.b + (bg_b.b - bg_a.b) * t};
      const double f[3] = {fg.r, fg.g, fg.b};
      uint8_t* dst = out.at(y, x);
      for (int k = 0; k < 3; ++k) {
        const double v = bg[k] * (1 - a) + f[k] * a + (shifted ? noise_sigma * rng.Normal() : 0.0);
        dst[k] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
  return out;
}

}  // namespace provp::builtin
