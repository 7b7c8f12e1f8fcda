// Fashion-MNIST (Debian package dataset-fashion-mnist) for the built-in
// model: an IDX reader for the gzipped image/label files, the class names,
// varied captions naming the class, and rendering of a 28x28 item into an
// RGB raster either as in the files (pretraining) or in the shifted
// DemoFashion style (tinted garment on a dark tinted gradient, with noise). Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/builtin/random.h"
#include "core/builtin/raster.h"
#include "core/builtin/scenes.h"

namespace provp::builtin {

inline constexpr char kDefaultFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

struct FashionMnist {
  int rows = 0;
  int cols = 0;
  std::vector<uint8_t> pixels;  // [n, rows, cols], 0 = background
  std::vector<uint8_t> labels;  // [n], 0..9

  int size() const { return static_cast<int>(labels.size()); }
  const uint8_t* image(int i) const { return &pixels[static_cast<size_t>(i) * rows * cols]; }
};

// Reads `dir`/{train,t10k}-images-idx3-ubyte.gz and the matching labels
// file (plain, uncompressed files without .gz are accepted too). At most
// `max_items` items when > 0. Errors name the file and what is wrong
// (magic number, counts, sizes, truncation, labels outside 0..9).
absl::StatusOr<FashionMnist> LoadFashionMnist(const std::string& dir, bool train,
                                              int max_items = 0);

// "t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt",
// "sneaker", "bag", "ankle boot" (label order of the dataset).
std::vector<std::string> FashionClassNames();

// A caption naming the class in one of several phrasings.
std::string FashionCaption(int label, Random& rng);

// Renders item `pixels` (rows x cols, 0 = background) into a resolution^2
// RGB raster, scaled to 7/8 of it and placed near the centre.
Raster RenderFashion(const uint8_t* pixels, int rows, int cols, int resolution, RenderStyle style,
                     Random& rng);

}  // namespace provp::builtin
