// Harmonic mean and seed statistics; see accuracy.h.
#include "core/data/accuracy.h"

#include <cmath>

namespace provp::data {

double HarmonicMean(double base, double novel) {
  const double sum = base + novel;
  if (sum == 0.0) return 0.0;
  return 2.0 * base * novel / sum;
}

MeanStd ComputeMeanStd(const std::vector<double>& values) {
  MeanStd out;
  if (values.empty()) return out;
  double sum = 0.0;
  for (double v : values) sum += v;
  out.mean = sum / static_cast<double>(values.size());
  double sq = 0.0;
  for (double v : values) sq += (v - out.mean) * (v - out.mean);
  out.std = std::sqrt(sq / static_cast<double>(values.size()));
  return out;
}

}  // namespace provp::data
