// Scene rendering and captions: determinism, distinct shapes, attributes
// that show in the pixels (position, style) and in the words.
#include "core/builtin/scenes.h"

#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace provp::builtin {
namespace {

using ::testing::HasSubstr;

int ColorIndex(const std::string& name) {
  for (size_t i = 0; i < SceneColors().size(); ++i) {
    if (name == SceneColors()[i].name) return static_cast<int>(i);
  }
  return -1;
}

// Mask of pixels darker than mid-grey: a black shape on white.
std::vector<bool> Mask(const Raster& r) {
  std::vector<bool> m;
  for (int y = 0; y < r.height; ++y) {
    for (int x = 0; x < r.width; ++x) m.push_back(r.at(y, x)[0] < 128);
  }
  return m;
}

SceneSpec BlackOnWhite(Shape shape) {
  SceneSpec s;
  s.shape = shape;
  s.color = ColorIndex("black");
  s.background = ColorIndex("white");
  s.texture = Texture::kSolid;
  s.large = true;
  s.position = Position::kCenter;
  s.count = 1;
  return s;
}

TEST(ScenesTest, SameSeedSameSceneAndCaption) {
  Random a(42), b(42);
  const SceneSpec sa = RandomScene(a);
  const SceneSpec sb = RandomScene(b);
  EXPECT_EQ(RenderScene(sa, 32, RenderStyle::kShifted, a).rgb,
            RenderScene(sb, 32, RenderStyle::kShifted, b).rgb);
  EXPECT_EQ(SceneCaption(sa, a), SceneCaption(sb, b));
}

TEST(ScenesTest, EveryShapeHasItsOwnSilhouette) {
  std::vector<std::vector<bool>> masks;
  for (int s = 0; s < kNumShapes; ++s) {
    Random rng(1);  // same placement for every shape
    const Raster r =
        RenderScene(BlackOnWhite(static_cast<Shape>(s)), 32, RenderStyle::kPretrain, rng);
    masks.push_back(Mask(r));
    int on = 0;
    for (bool b : masks.back()) on += b;
    EXPECT_GT(on, 60) << ShapeName(static_cast<Shape>(s));
    EXPECT_LT(on, 32 * 32 * 2 / 3) << ShapeName(static_cast<Shape>(s));
  }
  for (int i = 0; i < kNumShapes; ++i) {
    for (int j = i + 1; j < kNumShapes; ++j) {
      int diff = 0;
      for (size_t k = 0; k < masks[i].size(); ++k) diff += masks[i][k] != masks[j][k];
      // Hexagon vs pentagon is the closest pair (18 px at 32 px).
      EXPECT_GE(diff, 12) << ShapeName(static_cast<Shape>(i)) << " vs "
                          << ShapeName(static_cast<Shape>(j));
    }
  }
}

TEST(ScenesTest, PositionMovesTheShape) {
  auto centroid_x = [](Position p) {
    SceneSpec s = BlackOnWhite(Shape::kSquare);
    s.large = false;
    s.position = p;
    Random rng(3);
    const std::vector<bool> m = Mask(RenderScene(s, 32, RenderStyle::kPretrain, rng));
    double sum = 0;
    int n = 0;
    for (size_t k = 0; k < m.size(); ++k) {
      if (m[k]) {
        sum += k % 32;
        ++n;
      }
    }
    return sum / n;
  };
  EXPECT_LT(centroid_x(Position::kLeft) + 6, centroid_x(Position::kRight));
}

TEST(ScenesTest, ShiftedStyleDiffersFromPretrainStyle) {
  Random a(5), b(5);
  const SceneSpec s = BlackOnWhite(Shape::kStar);
  const Raster pre = RenderScene(s, 32, RenderStyle::kPretrain, a);
  const Raster shifted = RenderScene(s, 32, RenderStyle::kShifted, b);
  int differing = 0;
  for (size_t i = 0; i < pre.rgb.size(); ++i)
    differing += std::abs(pre.rgb[i] - shifted.rgb[i]) > 30;
  EXPECT_GT(differing, static_cast<int>(pre.rgb.size()) / 4);
}

TEST(ScenesTest, FixedShapeIsHonoured) {
  Random rng(9);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(RandomScene(rng, 7).shape, static_cast<Shape>(7));
}

TEST(ScenesTest, CaptionsNameTheShapeAndVary) {
  Random rng(11);
  std::set<std::string> captions;
  for (int i = 0; i < 300; ++i) {
    const SceneSpec s = RandomScene(rng);
    const std::string c = SceneCaption(s, rng);
    captions.insert(c);
    std::string noun = ShapeName(s.shape);
    if (s.count > 1) noun += s.shape == Shape::kCross ? "es" : "s";
    EXPECT_THAT(c, HasSubstr(noun));
    if (s.count == 2) {
      EXPECT_THAT(c, HasSubstr("two "));
    } else if (s.count == 3) {
      EXPECT_THAT(c, HasSubstr("three "));
    }
  }
  EXPECT_GT(captions.size(), 250u);
}

TEST(ScenesTest, CaptionColourWordsMatchTheScene) {
  Random rng(13);
  for (int i = 0; i < 200; ++i) {
    const SceneSpec s = RandomScene(rng);
    const std::string c = SceneCaption(s, rng);
    for (size_t k = 0; k < SceneColors().size(); ++k) {
      const std::string word = std::string(" ") + SceneColors()[k].name + " ";
      if (c.find(word) != std::string::npos) {
        EXPECT_TRUE(static_cast<int>(k) == s.color || static_cast<int>(k) == s.background) << c;
      }
    }
  }
}

}  // namespace
}  // namespace provp::builtin
