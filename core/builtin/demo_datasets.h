// The demo downstream datasets that ship with the built-in model, generated
// in memory and written in the CoOp layout (images + split_zhou_<Name>.json
// with [relative path, label, class name] under train/val/test), so they go
// through the project's real dataset loader:
//  - DemoShapes: 12 shape classes rendered in the shifted style (off-palette
//    colours, gradient/blotchy backgrounds, noise, outlines);
//  - DemoFashion: the 10 Fashion-MNIST classes from the t10k file (never
//    seen in pretraining), colourised on coloured backgrounds, half inverted.
// Both differ in style from the pretraining data, so zero-shot accuracy is
// imperfect and prompt tuning has something to learn. Pure functions apart
// from WriteCoopDataset's files; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/builtin/fashion_mnist.h"
#include "core/builtin/raster.h"
#include "core/builtin/scenes.h"

namespace provp::builtin {

inline constexpr char kDemoShapesName[] = "DemoShapes";
inline constexpr char kDemoFashionName[] = "DemoFashion";
inline constexpr char kDemoColorsName[] = "DemoColors";

struct LabeledRaster {
  Raster image;
  int label = 0;
};

struct DemoDataset {
  std::string name;
  std::vector<std::string> class_names;  // by label
  std::vector<LabeledRaster> train;
  std::vector<LabeledRaster> val;
  std::vector<LabeledRaster> test;
};

struct DemoSizes {
  // Per class. 16-shot sampling needs train_per_class >= 16.
  int train_per_class = 32;
  int val_per_class = 8;
  int test_per_class = 60;
  int resolution = 32;
  uint64_t seed = 7;
  // kShifted for the demo datasets; kPretrain renders the same items in the
  // pretraining style (to measure how much the domain shift costs).
  RenderStyle style = RenderStyle::kShifted;
};

absl::StatusOr<DemoDataset> MakeDemoShapes(const DemoSizes& sizes);

// DemoColors: scenes labelled by the object's colour (the 10 palette names),
// in the kShiftedPalette style (any shape, greyish gradient backgrounds,
// noise). sizes.style kPretrain renders them in the pretraining style.
absl::StatusOr<DemoDataset> MakeDemoColors(const DemoSizes& sizes);

// Items come from `t10k` (Fashion-MNIST's test file) in file order per class;
// FAILED_PRECONDITION when a class has fewer items than the sizes ask for.
absl::StatusOr<DemoDataset> MakeDemoFashion(const FashionMnist& t10k, const DemoSizes& sizes);

// Writes `dir`/images/<class>/<split>_<index>.png and
// `dir`/split_zhou_<name>.json (paths relative to `dir`). Class folder names
// have spaces replaced by "_". Files are replaced atomically.
absl::Status WriteCoopDataset(const DemoDataset& dataset, const std::string& dir);

}  // namespace provp::builtin
