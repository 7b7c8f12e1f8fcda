// A bit-exact copy of the parts of CPython's `random` module that few-shot
// sampling uses: `random.seed(int)` (MT19937 seeded by init_by_array from the
// integer's 32-bit words), `getrandbits(k)`, `_randbelow(n)` and
// `random.sample(range(n), k)`. With it the C++ sampler draws exactly the
// images that CoOp/Dassl's Python code draws for the same seed.
// Not thread-safe: one instance per thread (it is a plain state machine).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace provp::data {

class PyRandom {
 public:
  // Same state as `random.Random(seed)` in Python 3.
  explicit PyRandom(int64_t seed) { Seed(seed); }

  // `random.seed(seed)`: Python uses abs(seed), split into little-endian
  // 32-bit words (one zero word for 0), as the init_by_array key.
  void Seed(int64_t seed);

  // `random.getrandbits(k)` for 0 <= k <= 32.
  uint32_t GetRandBits(int k);

  // `random._randbelow(n)` for 1 <= n < 2^32: k = bit_length(n) bits per
  // draw, rejecting draws >= n.
  uint32_t RandBelow(uint32_t n);

  // `random.sample(range(n), k)`: k distinct indices in selection order,
  // following CPython's choice between the pool and the set algorithm.
  // INVALID_ARGUMENT unless 0 <= k <= n < 2^32.
  absl::StatusOr<std::vector<int64_t>> Sample(int64_t n, int64_t k);

  // One raw MT19937 output (`genrand_uint32`).
  uint32_t NextUint32();

 private:
  static constexpr int kN = 624;
  void InitGenrand(uint32_t s);
  void InitByArray(const uint32_t* key, int key_length);

  std::array<uint32_t, kN> mt_{};
  int mti_ = kN + 1;
};

}  // namespace provp::data
