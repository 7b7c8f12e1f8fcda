// Procedurally rendered scenes with compositional captions: the image-text
// data the built-in CLIP is pretrained on, and (in a shifted rendering
// style) the DemoShapes downstream dataset. A scene is one to three shapes
// with a colour, a fill texture, a size and a position on a background;
// its caption names a random subset of those attributes in varied words.
// Pure functions of their inputs and the Random they are given; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "core/builtin/random.h"
#include "core/builtin/raster.h"

namespace provp::builtin {

enum class Shape {
  kCircle,
  kSquare,
  kTriangle,
  kStar,
  kCross,
  kRing,
  kDiamond,
  kHexagon,
  kPentagon,
  kCrescent,
  kHeart,
  kArrow,
};
inline constexpr int kNumShapes = 12;

enum class Texture { kSolid, kStriped, kDotted, kCheckered };
inline constexpr int kNumTextures = 4;

enum class Position { kCenter, kLeft, kRight, kTop, kBottom };
inline constexpr int kNumPositions = 5;

// Singular class name of a shape ("circle", ..., "arrow").
const char* ShapeName(Shape shape);
// The 12 shape names in enum order (the DemoShapes class list).
std::vector<std::string> ShapeNames();

struct NamedColor {
  const char* name;
  Color rgb;
};
// The palette the pretraining scenes and captions use.
const std::vector<NamedColor>& SceneColors();

struct SceneSpec {
  Shape shape = Shape::kCircle;
  int color = 0;       // index into SceneColors()
  int background = 1;  // index into SceneColors(), != color
  Texture texture = Texture::kSolid;
  bool large = true;
  Position position = Position::kCenter;  // used when count == 1
  int count = 1;                          // 1..3; several shapes are small
};

// How a scene is drawn. kPretrain: palette colours on a flat background.
// kShifted (the downstream domain): off-palette colours, gradient and blotchy
// backgrounds, pixel noise, and one shape in seven drawn as an outline only.
// kShiftedPalette (DemoColors): the shifted backgrounds and noise, but the
// object keeps its palette colour (jittered) and is never an outline.
enum class RenderStyle { kPretrain, kShifted, kShiftedPalette };

// A random scene; with `shape` >= 0 the shape is fixed to it.
SceneSpec RandomScene(Random& rng, int shape = -1);

// Renders `spec` at resolution x resolution (>= 8) with 3x3 supersampling.
// Object placement jitter and style effects are drawn from `rng`.
Raster RenderScene(const SceneSpec& spec, int resolution, RenderStyle style, Random& rng);

// A caption naming the shape and a random subset of the other attributes,
// in one of several phrasings ("a photo of two small red striped stars on a
// white background", "a green circle on the left", ...).
std::string SceneCaption(const SceneSpec& spec, Random& rng);

// A caption naming only the shape, in one of a few phrasings ("a star",
// "a photo of a star.", "a drawing of a star", ...).
std::string ShapeCaption(Shape shape, Random& rng);

}  // namespace provp::builtin
