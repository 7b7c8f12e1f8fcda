// Shared fixtures of the train unit tests: a tiny random CLIP and a small
// synthetic task (noisy solid-colour images, one colour per class) whose
// classes a prompted model can learn. Header-only, test use only.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "core/clip/clip_model.h"
#include "core/clip/config.h"
#include "core/train/trainer.h"
#include "gtest/gtest.h"

namespace provp::train::testing {

inline clip::ClipModel TinyClip(uint64_t seed = 11) {
  auto m = clip::BuildRandomClipModel(clip::TinyConfig(), clip::ModelOptions{}, seed);
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

// `per_class` images of 40x40 per class; class c has colour kColors[c] plus
// uniform noise, so every random crop still shows the colour.
inline TrainingSet ColorSquares(int64_t num_classes, int64_t per_class, uint64_t seed = 1) {
  static const int kColors[][3] = {{220, 40, 40},  {40, 200, 60},  {50, 60, 220},
                                   {230, 220, 50}, {200, 60, 210}, {40, 210, 210}};
  torch::manual_seed(seed);
  TrainingSet set;
  for (int64_t i = 0; i < per_class; ++i) {
    for (int64_t c = 0; c < num_classes; ++c) {
      torch::Tensor base =
          torch::tensor({kColors[c][0], kColors[c][1], kColors[c][2]}, torch::kInt32)
              .view({1, 1, 3});
      torch::Tensor noise = torch::randint(-30, 31, {40, 40, 3}, torch::kInt32);
      set.images.push_back((base + noise).clamp(0, 255).to(torch::kUInt8));
      set.labels.push_back(c);
    }
  }
  return set;
}

// Fixed random class "text" features [C, embed_dim].
inline torch::Tensor RandomText(int64_t num_classes, int64_t dim = clip::TinyConfig().embed_dim,
                                uint64_t seed = 2) {
  torch::manual_seed(seed);
  return torch::randn({num_classes, dim});
}

inline std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("provp_train_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// A short tiny-model config: m 4, batch 8, a few epochs.
inline TrainConfig SmallConfig(int64_t epochs) {
  TrainConfig c;
  c.model.num_prompts = 4;
  c.epochs = epochs;
  c.batch_size = 8;
  c.seed = 5;
  return c;
}

}  // namespace provp::train::testing
