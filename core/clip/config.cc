// Sizes of the CLIP models this project knows, and the sanity bounds every
// config read from an untrusted file must meet before anything is
// allocated from it. Plain functions, no state.
#include "core/clip/config.h"

#include <tuple>

#include "absl/strings/str_cat.h"

namespace provp::clip {
namespace {

// Generous upper bounds: far above any released CLIP (ViT-bigG is width
// 1664, 48 layers), low enough that a hostile config cannot ask for
// terabytes before a weight shape is compared.
constexpr int64_t kMaxWidth = 16384;
constexpr int64_t kMaxLayers = 256;
constexpr int64_t kMaxResolution = 4096;
constexpr int64_t kMaxContext = 4096;
constexpr int64_t kMaxVocab = int64_t{1} << 22;

absl::Status CheckRange(const char* field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat("CLIP config field ", field, " = ", value,
                                                   " is outside [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ClipConfig::DebugString() const {
  return absl::StrCat("ViT w", vision_width, " L", vision_layers, " h", vision_heads, " p",
                      vision_patch_size, " r", image_resolution, " / text w", text_width, " L",
                      text_layers, " h", text_heads, " ctx", context_length, " vocab", vocab_size,
                      " / embed ", embed_dim);
}

absl::Status ValidateConfig(const ClipConfig& c) {
  for (auto [name, value, lo, hi] :
       {std::tuple<const char*, int64_t, int64_t, int64_t>{"embed_dim", c.embed_dim, 1, kMaxWidth},
        {"image_resolution", c.image_resolution, 1, kMaxResolution},
        {"vision_patch_size", c.vision_patch_size, 1, kMaxResolution},
        {"vision_width", c.vision_width, 1, kMaxWidth},
        {"vision_layers", c.vision_layers, 1, kMaxLayers},
        {"vision_heads", c.vision_heads, 1, kMaxWidth},
        {"context_length", c.context_length, 1, kMaxContext},
        {"vocab_size", c.vocab_size, 1, kMaxVocab},
        {"text_width", c.text_width, 1, kMaxWidth},
        {"text_layers", c.text_layers, 1, kMaxLayers},
        {"text_heads", c.text_heads, 1, kMaxWidth}}) {
    if (absl::Status s = CheckRange(name, value, lo, hi); !s.ok()) return s;
  }
  if (c.image_resolution % c.vision_patch_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CLIP config: image_resolution ", c.image_resolution,
                     " is not a multiple of vision_patch_size ", c.vision_patch_size));
  }
  if (c.vision_width % c.vision_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("CLIP config: vision_width ", c.vision_width,
                                                   " is not a multiple of vision_heads ",
                                                   c.vision_heads));
  }
  if (c.text_width % c.text_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("CLIP config: text_width ", c.text_width,
                                                   " is not a multiple of text_heads ",
                                                   c.text_heads));
  }
  if (!(c.layer_norm_eps > 0.0 && c.layer_norm_eps < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CLIP config: layer_norm_eps ", c.layer_norm_eps, " is outside (0, 1)"));
  }
  return absl::OkStatus();
}

ClipConfig ViTB16Config() { return ClipConfig{}; }

ClipConfig TinyConfig() {
  ClipConfig c;
  c.embed_dim = 32;
  c.image_resolution = 32;
  c.vision_patch_size = 8;
  c.vision_width = 64;
  c.vision_layers = 2;
  c.vision_heads = 2;
  // The full vocabulary and context keep the real tokenizer usable with it.
  c.context_length = 77;
  c.vocab_size = 49408;
  c.text_width = 32;
  c.text_layers = 2;
  c.text_heads = 1;
  return c;
}

}  // namespace provp::clip
