// Scene rendering by per-pixel shape tests (no drawing library, so the
// LibTorch-only build can generate data): each shape is an inside/outside
// test in shape-local coordinates u, v in [-1, 1] (v points down), sampled
// 3x3 per pixel for anti-aliasing. Captions are assembled from word lists.
#include "core/builtin/scenes.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace provp::builtin {
namespace {

constexpr double kPi = 3.14159265358979323846;

struct Pt {
  double x;
  double y;
};

// Even-odd rule, so the non-convex star works too.
bool InPolygon(const std::vector<Pt>& poly, double x, double y) {
  bool in = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    const Pt& a = poly[i];
    const Pt& b = poly[j];
    if ((a.y > y) != (b.y > y) && x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x) in = !in;
  }
  return in;
}

std::vector<Pt> RegularPolygon(int sides, double radius, double start_angle) {
  std::vector<Pt> p;
  for (int i = 0; i < sides; ++i) {
    const double a = start_angle + 2 * kPi * i / sides;
    p.push_back({radius * std::cos(a), radius * std::sin(a)});
  }
  return p;
}

const std::vector<Pt>& StarPolygon() {
  static const std::vector<Pt>* star = [] {
    auto* p = new std::vector<Pt>;
    for (int i = 0; i < 10; ++i) {
      const double r = (i % 2 == 0) ? 1.0 : 0.42;
      const double a = -kPi / 2 + kPi * i / 5;
      p->push_back({r * std::cos(a), r * std::sin(a)});
    }
    return p;
  }();
  return *star;
}

bool InsideShape(Shape shape, double u, double v) {
  static const std::vector<Pt> kTriangle = {{0, -0.95}, {0.95, 0.72}, {-0.95, 0.72}};
  static const std::vector<Pt> kHexagon = RegularPolygon(6, 0.95, 0);
  static const std::vector<Pt> kPentagon = RegularPolygon(5, 0.97, -kPi / 2);
  static const std::vector<Pt> kArrowHead = {{0.05, -0.75}, {0.97, 0}, {0.05, 0.75}};
  switch (shape) {
    case Shape::kCircle:
      return u * u + v * v <= 0.88 * 0.88;
    case Shape::kSquare:
      return std::abs(u) <= 0.78 && std::abs(v) <= 0.78;
    case Shape::kTriangle:
      return InPolygon(kTriangle, u, v);
    case Shape::kStar:
      return InPolygon(StarPolygon(), u, v);
    case Shape::kCross:
      return (std::abs(u) <= 0.3 && std::abs(v) <= 0.95) ||
             (std::abs(v) <= 0.3 && std::abs(u) <= 0.95);
    case Shape::kRing: {
      const double r2 = u * u + v * v;
      return r2 <= 0.95 * 0.95 && r2 >= 0.52 * 0.52;
    }
    case Shape::kDiamond:
      return std::abs(u) + std::abs(v) <= 1.0;
    case Shape::kHexagon:
      return InPolygon(kHexagon, u, v);
    case Shape::kPentagon:
      return InPolygon(kPentagon, u, v);
    case Shape::kCrescent: {
      const double du = u - 0.42;
      const double dv = v + 0.05;
      return u * u + v * v <= 0.92 * 0.92 && du * du + dv * dv >= 0.72 * 0.72;
    }
    case Shape::kHeart: {
      // (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 with y pointing up.
      const double x = u * 1.2;
      const double y = -v * 1.2 + 0.15;
      const double a = x * x + y * y - 1;
      return a * a * a - x * x * y * y * y <= 0;
    }
    case Shape::kArrow:
      return (std::abs(v) <= 0.25 && u >= -0.95 && u <= 0.1) || InPolygon(kArrowHead, u, v);
  }
  return false;
}

double Luma(const Color& c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; }

Color Mix(const Color& a, const Color& b, double t) {
  return {static_cast<float>(a.r + (b.r - a.r) * t), static_cast<float>(a.g + (b.g - a.g) * t),
          static_cast<float>(a.b + (b.b - a.b) * t)};
}

Color FromHsv(double h, double s, double v) {
  const double c = v * s;
  const double hp = std::fmod(h, 1.0) * 6;
  const double x = c * (1 - std::abs(std::fmod(hp, 2.0) - 1));
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(hp)) {
    case 0:
      r = c;
      g = x;
      break;
    case 1:
      r = x;
      g = c;
      break;
    case 2:
      g = c;
      b = x;
      break;
    case 3:
      g = x;
      b = c;
      break;
    case 4:
      r = x;
      b = c;
      break;
    default:
      r = c;
      b = x;
      break;
  }
  const double m = v - c;
  return {static_cast<float>((r + m) * 255), static_cast<float>((g + m) * 255),
          static_cast<float>((b + m) * 255)};
}

// Smooth random field in [0, 1]: a coarse grid of random values, bilinearly
// interpolated (blotchy backgrounds of the shifted style).
class ValueNoise {
 public:
  ValueNoise(int cells, Random& rng) : cells_(cells), v_((cells + 1) * (cells + 1)) {
    for (double& x : v_) x = rng.Uniform();
  }
  // x, y in [0, 1].
  double At(double x, double y) const {
    const double fx = std::clamp(x, 0.0, 1.0) * cells_;
    const double fy = std::clamp(y, 0.0, 1.0) * cells_;
    const int ix = std::min(static_cast<int>(fx), cells_ - 1);
    const int iy = std::min(static_cast<int>(fy), cells_ - 1);
    const double tx = fx - ix;
    const double ty = fy - iy;
    auto g = [&](int i, int j) { return v_[j * (cells_ + 1) + i]; };
    return (g(ix, iy) * (1 - tx) + g(ix + 1, iy) * tx) * (1 - ty) +
           (g(ix, iy + 1) * (1 - tx) + g(ix + 1, iy + 1) * tx) * ty;
  }

 private:
  int cells_;
  std::vector<double> v_;
};

struct Placed {
  double cx;
  double cy;
  double radius;
};

std::vector<Placed> Layout(const SceneSpec& spec, int res, Random& rng) {
  std::vector<Placed> out;
  const double r = res;
  if (spec.count <= 1) {
    const double radius = spec.large ? r * rng.Uniform(0.27, 0.33) : r * rng.Uniform(0.15, 0.19);
    double cx = 0.5, cy = 0.5;
    switch (spec.position) {
      case Position::kCenter:
        break;
      case Position::kLeft:
        cx = 0.3;
        break;
      case Position::kRight:
        cx = 0.7;
        break;
      case Position::kTop:
        cy = 0.3;
        break;
      case Position::kBottom:
        cy = 0.7;
        break;
    }
    out.push_back(
        {(cx + rng.Uniform(-0.04, 0.04)) * r, (cy + rng.Uniform(-0.04, 0.04)) * r, radius});
    return out;
  }
  for (int i = 0; i < spec.count; ++i) {
    const double radius = r * rng.Uniform(0.13, 0.17);
    Placed best{r / 2, r / 2, radius};
    for (int attempt = 0; attempt < 60; ++attempt) {
      Placed p{rng.Uniform(radius, r - radius), rng.Uniform(radius, r - radius), radius};
      bool clear = true;
      for (const Placed& q : out) {
        if (std::hypot(p.cx - q.cx, p.cy - q.cy) < 1.05 * (p.radius + q.radius)) clear = false;
      }
      best = p;
      if (clear) break;
    }
    out.push_back(best);
  }
  return out;
}

// Fill colour of texture `t` at pixel (x, y): the object colour, or on the
// pattern's second phase a darker or lighter variant of it.
Color TextureColor(Texture t, const Color& base, double x, double y, double period) {
  bool alt = false;
  switch (t) {
    case Texture::kSolid:
      break;
    case Texture::kStriped:
      alt = std::fmod(std::floor((x + y) / period), 2.0) != 0;
      break;
    case Texture::kDotted: {
      const double fx = std::fmod(x, period) - period / 2;
      const double fy = std::fmod(y, period) - period / 2;
      alt = fx * fx + fy * fy > (period * 0.3) * (period * 0.3);
      break;
    }
    case Texture::kCheckered:
      alt = (static_cast<int>(std::floor(x / period)) + static_cast<int>(std::floor(y / period))) %
                2 !=
            0;
      break;
  }
  if (!alt) return base;
  const Color contrast = Luma(base) > 110 ? Color{0, 0, 0} : Color{255, 255, 255};
  return Mix(base, contrast, 0.65);
}

uint8_t ToByte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

}  // namespace

const char* ShapeName(Shape shape) {
  static constexpr std::array<const char*, kNumShapes> kNames = {
      "circle",  "square",  "triangle", "star",     "cross", "ring",
      "diamond", "hexagon", "pentagon", "crescent", "heart", "arrow"};
  return kNames[static_cast<int>(shape)];
}

std::vector<std::string> ShapeNames() {
  std::vector<std::string> names;
  for (int i = 0; i < kNumShapes; ++i) names.emplace_back(ShapeName(static_cast<Shape>(i)));
  return names;
}

const std::vector<NamedColor>& SceneColors() {
  static const std::vector<NamedColor>* colors = new std::vector<NamedColor>{
      {"red", {215, 35, 35}},     {"green", {40, 165, 60}},   {"blue", {40, 80, 220}},
      {"yellow", {240, 215, 40}}, {"orange", {245, 135, 20}}, {"purple", {135, 50, 180}},
      {"pink", {250, 135, 190}},  {"white", {245, 245, 245}}, {"black", {15, 15, 15}},
      {"gray", {128, 128, 128}},
  };
  return *colors;
}

SceneSpec RandomScene(Random& rng, int shape) {
  SceneSpec s;
  s.shape = static_cast<Shape>(shape >= 0 ? shape % kNumShapes : rng.Int(kNumShapes));
  const int n = static_cast<int>(SceneColors().size());
  s.color = rng.Int(n);
  do {
    s.background = rng.Int(n);
  } while (std::abs(Luma(SceneColors()[s.background].rgb) - Luma(SceneColors()[s.color].rgb)) < 40);
  // Mostly single, large, solid objects: at 32 px a shape is only
  // recognisable when it is big and its silhouette is not broken up.
  s.texture =
      rng.Bernoulli(0.7) ? Texture::kSolid : static_cast<Texture>(1 + rng.Int(kNumTextures - 1));
  const double u = rng.Uniform();
  s.count = u < 0.85 ? 1 : (u < 0.95 ? 2 : 3);
  s.large = s.count == 1 && rng.Bernoulli(0.75);
  s.position = static_cast<Position>(rng.Int(kNumPositions));
  return s;
}

Raster RenderScene(const SceneSpec& spec, int resolution, RenderStyle style, Random& rng) {
  const int res = std::max(resolution, 8);
  const double scale = res / 32.0;  // texture periods are tuned at 32 px
  Raster out(res, res);
  const bool shifted = style != RenderStyle::kPretrain;

  Color object = SceneColors()[spec.color % SceneColors().size()].rgb;
  Color bg_a = SceneColors()[spec.background % SceneColors().size()].rgb;
  Color bg_b = bg_a;
  bool outline = false;
  double noise_sigma = 0;
  double period = 4 * scale;
  std::unique_ptr<ValueNoise> blotches;
  double gradient_angle = 0;
  if (shifted) {
    // Off-palette colours with the background on the other side of mid-grey,
    // so the shape stays visible.
    const bool palette = style == RenderStyle::kShiftedPalette;
    // The palette style keeps the object's named colour (jittered), so the
    // background goes to the other side of mid-grey and stays greyish.
    const bool dark_bg = palette ? Luma(object) >= 110 : rng.Bernoulli(0.5);
    const double bg_sat = palette ? 0.3 : 0.8;
    auto bg_value = [&] { return dark_bg ? rng.Uniform(0.08, 0.35) : rng.Uniform(0.7, 0.95); };
    bg_a = FromHsv(rng.Uniform(), rng.Uniform(0.0, bg_sat), bg_value());
    bg_b = FromHsv(rng.Uniform(), rng.Uniform(0.0, bg_sat), bg_value());
    if (palette) {
      object = {static_cast<float>(std::clamp(object.r + rng.Uniform(-20, 20), 0.0, 255.0)),
                static_cast<float>(std::clamp(object.g + rng.Uniform(-20, 20), 0.0, 255.0)),
                static_cast<float>(std::clamp(object.b + rng.Uniform(-20, 20), 0.0, 255.0))};
    } else {
      object = FromHsv(rng.Uniform(), rng.Uniform(0.45, 1.0),
                       dark_bg ? rng.Uniform(0.65, 1.0) : rng.Uniform(0.15, 0.5));
      outline = rng.Bernoulli(0.15);
    }
    noise_sigma = rng.Uniform(3, 8);
    period = rng.Uniform(3, 5.5) * scale;
    blotches = std::make_unique<ValueNoise>(4, rng);
    gradient_angle = rng.Uniform(0, 2 * kPi);
  }

  const std::vector<Placed> placed = Layout(spec, res, rng);
  const double ga = std::cos(gradient_angle);
  const double gb = std::sin(gradient_angle);
  for (int y = 0; y < res; ++y) {
    for (int x = 0; x < res; ++x) {
      const double nx = (x + 0.5) / res;
      const double ny = (y + 0.5) / res;
      Color bg = bg_a;
      if (shifted) {
        const double t = std::clamp(0.5 + 0.5 * ((nx - 0.5) * ga + (ny - 0.5) * gb) * 2, 0.0, 1.0);
        bg = Mix(bg_a, bg_b, t);
        const double blotch = (blotches->At(nx, ny) - 0.5) * 30;
        bg = {static_cast<float>(bg.r + blotch), static_cast<float>(bg.g + blotch),
              static_cast<float>(bg.b + blotch)};
      }
      double acc[3] = {0, 0, 0};
      for (int sy = 0; sy < 3; ++sy) {
        for (int sx = 0; sx < 3; ++sx) {
          const double px = x + (sx + 0.5) / 3;
          const double py = y + (sy + 0.5) / 3;
          Color c = bg;
          for (const Placed& p : placed) {
            const double u = (px - p.cx) / p.radius;
            const double v = (py - p.cy) / p.radius;
            if (!InsideShape(spec.shape, u, v)) continue;
            if (outline && InsideShape(spec.shape, u / 0.68, v / 0.68)) continue;
            c = TextureColor(spec.texture, object, px, py, period);
          }
          acc[0] += c.r;
          acc[1] += c.g;
          acc[2] += c.b;
        }
      }
      uint8_t* dst = out.at(y, x);
      for (int k = 0; k < 3; ++k) {
        const double noise = shifted ? noise_sigma * rng.Normal() : 0.0;
        dst[k] = ToByte(acc[k] / 9 + noise);
      }
    }
  }
  return out;
}

std::string SceneCaption(const SceneSpec& spec, Random& rng) {
  auto pick = [&rng](std::initializer_list<const char*> words) {
    return std::string(*(words.begin() + rng.Int(static_cast<int>(words.size()))));
  };
  std::vector<std::string> adjectives;
  if (spec.count == 1 && rng.Bernoulli(0.5)) {
    adjectives.push_back(spec.large ? pick({"large", "big"}) : pick({"small", "little"}));
  } else if (spec.count > 1 && rng.Bernoulli(0.3)) {
    adjectives.push_back(pick({"small", "little"}));
  }
  if (rng.Bernoulli(0.75)) adjectives.emplace_back(SceneColors()[spec.color].name);
  if (spec.texture != Texture::kSolid && rng.Bernoulli(0.6)) {
    switch (spec.texture) {
      case Texture::kStriped:
        adjectives.push_back("striped");
        break;
      case Texture::kDotted:
        adjectives.push_back(pick({"dotted", "polka-dot"}));
        break;
      case Texture::kCheckered:
        adjectives.push_back(pick({"checkered", "chequered"}));
        break;
      case Texture::kSolid:
        break;
    }
  }
  std::string noun = ShapeName(spec.shape);
  if (spec.count > 1) noun += (spec.shape == Shape::kCross) ? "es" : "s";
  std::string phrase;
  for (const std::string& a : adjectives) absl::StrAppend(&phrase, a, " ");
  phrase += noun;
  if (spec.count == 1) {
    const char first = phrase[0];
    const bool vowel = first == 'a' || first == 'e' || first == 'i' || first == 'o' || first == 'u';
    phrase = absl::StrCat(vowel ? "an " : "a ", phrase);
  } else {
    phrase = absl::StrCat(spec.count == 2 ? "two " : "three ", phrase);
  }
  std::string caption = absl::StrCat(pick({"", "", "a photo of ", "a photo of ", "an image of ",
                                           "a picture of ", "a drawing of ", "a rendering of "}),
                                     phrase);
  if (spec.count == 1 && rng.Bernoulli(0.5)) {
    switch (spec.position) {
      case Position::kCenter:
        caption += pick({" in the center", " in the middle"});
        break;
      case Position::kLeft:
        caption += pick({" on the left", " at the left"});
        break;
      case Position::kRight:
        caption += pick({" on the right", " at the right"});
        break;
      case Position::kTop:
        caption += pick({" at the top", " near the top"});
        break;
      case Position::kBottom:
        caption += pick({" at the bottom", " near the bottom"});
        break;
    }
  }
  if (rng.Bernoulli(0.4)) {
    absl::StrAppend(&caption, pick({" on a ", " against a "}), SceneColors()[spec.background].name,
                    " background");
  }
  if (rng.Bernoulli(0.5)) caption += ".";
  return caption;
}

std::string ShapeCaption(Shape shape, Random& rng) {
  static constexpr std::array<const char*, 6> kPrefixes = {"a ",
                                                           "a photo of a ",
                                                           "a photo of a ",
                                                           "a drawing of a ",
                                                           "an image of a ",
                                                           "a picture of a "};
  std::string prefix = kPrefixes[rng.Int(static_cast<int>(kPrefixes.size()))];
  const std::string name = ShapeName(shape);
  // "an arrow", but the default zero-shot template says "a {}": keep both.
  if (name[0] == 'a' && rng.Bernoulli(0.5)) prefix.insert(prefix.size() - 1, "n");
  std::string caption = prefix + name;
  if (rng.Bernoulli(0.5)) caption += ".";
  return caption;
}

}  // namespace provp::builtin
