// Sizes of a CLIP model (OpenAI architecture: ViT image tower, causal text
// transformer). Filled from a checkpoint's tensor shapes (OpenAI layout) or
// from config.json (Hugging Face layout); plain value type.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace provp::clip {

struct ClipConfig {
  // Joint embedding size (output of both projections).
  int64_t embed_dim = 512;
  // Vision tower.
  int64_t image_resolution = 224;
  int64_t vision_patch_size = 16;
  int64_t vision_width = 768;
  int64_t vision_layers = 12;
  int64_t vision_heads = 12;  // OpenAI layout: width / 64.
  // Text tower.
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t text_width = 512;
  int64_t text_layers = 12;
  int64_t text_heads = 8;  // OpenAI layout: width / 64.
  double layer_norm_eps = 1e-5;

  int64_t grid_size() const { return image_resolution / vision_patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  // Human-readable one-liner for logs ("ViT w768 L12 p16 r224 / text w512 L12").
  std::string DebugString() const;
};

// Checks that every size is positive and within generous bounds, that the
// patch size divides the resolution and the heads divide the widths. Call it
// on any config read from a file before building a model from it.
absl::Status ValidateConfig(const ClipConfig& config);

// OpenAI ViT-B/16, the default backbone.
ClipConfig ViTB16Config();
// Width 32-64, 2 layers, 32 px, patch 8, full vocabulary: for unit tests
// and CPU benchmarks.
ClipConfig TinyConfig();

}  // namespace provp::clip
