// MT19937 and CPython's sampling helpers; see py_random.h.
#include "core/data/py_random.h"

#include <cmath>
#include <unordered_set>

#include "absl/strings/str_cat.h"

namespace provp::data {
namespace {

constexpr int kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfU;
constexpr uint32_t kUpperMask = 0x80000000U;
constexpr uint32_t kLowerMask = 0x7fffffffU;

int BitLength(uint64_t n) {
  int bits = 0;
  while (n != 0) {
    ++bits;
    n >>= 1;
  }
  return bits;
}

}  // namespace

void PyRandom::InitGenrand(uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < kN; ++i) {
    mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  mti_ = kN;
}

void PyRandom::InitByArray(const uint32_t* key, int key_length) {
  InitGenrand(19650218U);
  int i = 1;
  int j = 0;
  for (int k = (kN > key_length ? kN : key_length); k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] +
             static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = kN - 1; k > 0; --k) {
    mt_[i] =
        (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;  // MSB is 1, assuring a non-zero initial array.
  mti_ = kN;
}

void PyRandom::Seed(int64_t seed) {
  // abs() of INT64_MIN does not fit int64, but it does fit uint64.
  const uint64_t magnitude =
      seed < 0 ? uint64_t{0} - static_cast<uint64_t>(seed) : static_cast<uint64_t>(seed);
  uint32_t key[2] = {static_cast<uint32_t>(magnitude), static_cast<uint32_t>(magnitude >> 32)};
  const int bits = BitLength(magnitude);
  const int key_used = bits == 0 ? 1 : (bits - 1) / 32 + 1;
  InitByArray(key, key_used);
}

uint32_t PyRandom::NextUint32() {
  static constexpr uint32_t kMag01[2] = {0x0U, kMatrixA};
  if (mti_ >= kN) {
    int kk = 0;
    for (; kk < kN - kM; ++kk) {
      const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ kMag01[y & 0x1U];
    }
    for (; kk < kN - 1; ++kk) {
      const uint32_t y = (mt_[kk] & kUpperMask) | (mt_[kk + 1] & kLowerMask);
      mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ kMag01[y & 0x1U];
    }
    const uint32_t y = (mt_[kN - 1] & kUpperMask) | (mt_[0] & kLowerMask);
    mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ kMag01[y & 0x1U];
    mti_ = 0;
  }
  uint32_t y = mt_[mti_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= (y >> 18);
  return y;
}

uint32_t PyRandom::GetRandBits(int k) {
  // CPython returns 0 for k == 0 without consuming state; for k <= 32 it
  // keeps the top k bits of one output.
  if (k <= 0) return 0;
  if (k > 32) k = 32;
  return NextUint32() >> (32 - k);
}

uint32_t PyRandom::RandBelow(uint32_t n) {
  if (n == 0) return 0;
  const int k = BitLength(n);
  uint32_t r = GetRandBits(k);
  while (r >= n) r = GetRandBits(k);
  return r;
}

absl::StatusOr<std::vector<int64_t>> PyRandom::Sample(int64_t n, int64_t k) {
  if (n < 0 || n > int64_t{0xffffffff} || k < 0 || k > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample of ", k, " from a population of ", n, ": need 0 <= k <= n < 2^32"));
  }
  std::vector<int64_t> result;
  result.reserve(static_cast<size_t>(k));
  // CPython compares the memory of an n-element list with a k-element set;
  // the branch changes which indices come out, so it is copied exactly,
  // including the float log (3k is never a power of 4, so no rounding edge).
  int64_t set_size = 21;
  if (k > 5) {
    set_size += static_cast<int64_t>(
        std::pow(4.0, std::ceil(std::log(static_cast<double>(k * 3)) / std::log(4.0))));
  }
  if (n <= set_size) {
    std::vector<int64_t> pool(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pool[static_cast<size_t>(i)] = i;
    for (int64_t i = 0; i < k; ++i) {
      const int64_t j = RandBelow(static_cast<uint32_t>(n - i));
      result.push_back(pool[static_cast<size_t>(j)]);
      pool[static_cast<size_t>(j)] = pool[static_cast<size_t>(n - i - 1)];
    }
  } else {
    std::unordered_set<int64_t> selected;
    for (int64_t i = 0; i < k; ++i) {
      int64_t j = RandBelow(static_cast<uint32_t>(n));
      while (selected.count(j) != 0) j = RandBelow(static_cast<uint32_t>(n));
      selected.insert(j);
      result.push_back(j);
    }
  }
  return result;
}

}  // namespace provp::data
