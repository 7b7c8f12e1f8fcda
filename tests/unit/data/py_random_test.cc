// PyRandom against values printed by CPython 3.11.7's `random` module.
// Produced with, for each seed s:
//   r = random.Random(); r.seed(s)
//   [r.getrandbits(32) for _ in range(3)], r.getrandbits(7), r.getrandbits(1)
// and for each (s, n, k): r.seed(s); r.sample(range(n), k).
#include "core/data/py_random.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"

namespace provp::data {
namespace {

using ::provp::testing::StatusIs;
using ::testing::ElementsAreArray;

struct BitsCase {
  int64_t seed;
  uint32_t words[3];
  uint32_t bits7;
  uint32_t bits1;
};

TEST(PyRandomTest, GetRandBitsMatchesCPython) {
  const BitsCase kCases[] = {
      {1, {577090037u, 2444712010u, 3639700191u}, 102, 1},
      {0, {3626764237u, 1654615998u, 3255389356u}, 113, 0},
      // 2**40 + 5: a two-word init_by_array key.
      {(int64_t{1} << 40) + 5, {2166296868u, 2220160828u, 1153647273u}, 84, 1},
      // Python seeds with abs(seed).
      {-3, {1022050301u, 2545373330u, 2337446730u}, 16, 0},
  };
  for (const BitsCase& c : kCases) {
    PyRandom rng(c.seed);
    EXPECT_EQ(rng.GetRandBits(32), c.words[0]) << "seed " << c.seed;
    EXPECT_EQ(rng.GetRandBits(32), c.words[1]) << "seed " << c.seed;
    EXPECT_EQ(rng.GetRandBits(32), c.words[2]) << "seed " << c.seed;
    EXPECT_EQ(rng.GetRandBits(7), c.bits7) << "seed " << c.seed;
    EXPECT_EQ(rng.GetRandBits(1), c.bits1) << "seed " << c.seed;
  }
}

TEST(PyRandomTest, ReseedRestartsTheStream) {
  PyRandom rng(7);
  const uint32_t first = rng.NextUint32();
  rng.NextUint32();
  rng.Seed(7);
  EXPECT_EQ(rng.NextUint32(), first);
}

struct SampleCase {
  int64_t seed;
  int64_t n;
  int64_t k;
  std::vector<int64_t> expected;
};

TEST(PyRandomTest, SampleMatchesCPythonInBothBranches) {
  const std::vector<SampleCase> kCases = {
      // Pool branch (n <= setsize 85 for k = 16; 21 for k <= 5).
      {1, 20, 16, {4, 18, 2, 8, 3, 7, 12, 14, 13, 10, 6, 15, 1, 16, 0, 9}},
      {4, 60, 16, {15, 19, 6, 46, 25, 30, 9, 5, 4, 1, 55, 35, 18, 3, 14, 33}},
      {5, 7, 7, {4, 2, 5, 0, 1, 3, 6}},
      {7, 85, 16, {41, 19, 50, 6, 9, 68, 12, 46, 74, 7, 64, 27, 4, 11, 55, 53}},
      // Set branch.
      {2, 100, 4, {7, 11, 10, 46}},
      {3, 1000, 16, {243, 606, 557, 133, 378, 937, 618, 485, 640, 594, 67, 620, 13, 930, 857, 480}},
      {6, 86, 16, {73, 10, 62, 33, 4, 0, 18, 84, 75, 60, 47, 40, 2, 34, 25, 52}},
  };
  for (const SampleCase& c : kCases) {
    PyRandom rng(c.seed);
    absl::StatusOr<std::vector<int64_t>> got = rng.Sample(c.n, c.k);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_THAT(*got, ElementsAreArray(c.expected)) << "seed " << c.seed << " n " << c.n;
  }
}

TEST(PyRandomTest, SampleRejectsImpossibleRequests) {
  PyRandom rng(1);
  EXPECT_THAT(rng.Sample(3, 4), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(rng.Sample(3, -1), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(rng.Sample(int64_t{1} << 33, 1), StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<std::vector<int64_t>> empty = rng.Sample(0, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(PyRandomTest, RandBelowStaysInRange) {
  PyRandom rng(11);
  for (uint32_t n : {1u, 2u, 3u, 5u, 1000u, 0x80000001u}) {
    for (int i = 0; i < 200; ++i) EXPECT_LT(rng.RandBelow(n), n);
  }
}

}  // namespace
}  // namespace provp::data
