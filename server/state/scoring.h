// Zero-shot/prompted classification scores of one image against class text
// features: logits = logit_scale * cosine (both sides are L2-normalised),
// softmax probabilities, and the top k classes by probability (ties go to
// the lower class index, so results are deterministic). Pure; thread-safe.
#pragma once

#include <vector>

#include "core/engine/engine.h"

namespace provp::server {

struct ClassScore {
  int class_index = 0;
  double probability = 0.0;
  double logit = 0.0;
};

struct ImageScores {
  // The top min(k, classes) classes, best first.
  std::vector<ClassScore> top;
  // Softmax probability of every class, in class order (when asked for).
  std::vector<double> all_probabilities;
};

// `image` has text.dim floats. k <= 0 returns no top classes.
ImageScores ScoreImage(const float* image, const engine::FeatureMatrix& text, double logit_scale,
                       int k, bool all_probabilities);

}  // namespace provp::server
