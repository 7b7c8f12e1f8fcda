// A seeded random source whose outputs are the same on every platform:
// std::mt19937_64's sequence is fixed by the standard, but the standard
// distributions are not, so the transforms here are our own. Generated data
// and pretraining batches therefore depend only on the seed.
// Not thread-safe; use one per thread.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace provp::builtin {

class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  uint64_t Next() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0); }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n); n > 0. The modulo bias is below 2^-40 for
  // the small n used here.
  int Int(int n) { return static_cast<int>(engine_() % static_cast<uint64_t>(n)); }
  bool Bernoulli(double p) { return Uniform() < p; }
  // Standard normal (Box-Muller, one value per call).
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // A new independent stream derived from this one.
  Random Fork() { return Random(engine_() ^ 0x9e3779b97f4a7c15ULL); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace provp::builtin
