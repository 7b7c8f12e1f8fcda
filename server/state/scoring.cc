// Implementation of scoring.h.
#include "server/state/scoring.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace provp::server {

ImageScores ScoreImage(const float* image, const engine::FeatureMatrix& text, double logit_scale,
                       int k, bool all_probabilities) {
  const int64_t c = text.rows;
  const int64_t d = text.dim;
  std::vector<double> logits(c), probs(c);
  double max_logit = -1e300;
  for (int64_t j = 0; j < c; ++j) {
    const float* t = text.row(j);
    double dot = 0;
    for (int64_t q = 0; q < d; ++q) dot += static_cast<double>(image[q]) * t[q];
    logits[j] = logit_scale * dot;
    max_logit = std::max(max_logit, logits[j]);
  }
  // Subtracting the maximum keeps exp() finite for any logit scale.
  double sum = 0;
  for (int64_t j = 0; j < c; ++j) sum += (probs[j] = std::exp(logits[j] - max_logit));
  for (int64_t j = 0; j < c; ++j) probs[j] /= sum;
  const int top = static_cast<int>(std::clamp<int64_t>(k, 0, c));
  std::vector<int> order(c);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](int a, int b) {
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
  });
  ImageScores out;
  out.top.reserve(top);
  for (int j = 0; j < top; ++j) out.top.push_back({order[j], probs[order[j]], logits[order[j]]});
  if (all_probabilities) out.all_probabilities = std::move(probs);
  return out;
}

}  // namespace provp::server
