// Tests that the heap-based BPE merge equals CLIP's merge-all-per-round loop
// on well-ordered merge tables, and that WellOrdered spots tables where the
// two would differ.
#include "core/text/bpe_merge.h"

#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace provp::text {
namespace {

using ::testing::ElementsAre;

TEST(BpeMergeTest, MergesLowestRankFirstAndAllOccurrences) {
  // Symbols: a=0 b=1; merges: (a,b)->2 rank 0, (2,2)->3 rank 1, (a,a)->4 rank 2.
  MergeTable table;
  ASSERT_TRUE(table.Add(0, 1, 2));
  ASSERT_TRUE(table.Add(2, 2, 3));
  ASSERT_TRUE(table.Add(0, 0, 4));
  EXPECT_FALSE(table.Add(0, 1, 2));  // Duplicate.
  EXPECT_TRUE(table.WellOrdered());
  const std::vector<int32_t> word = {0, 1, 0, 1, 0, 0, 0};  // a b a b a a a
  EXPECT_THAT(MergeReference(table, word), ElementsAre(3, 4, 0));
  EXPECT_THAT(MergeFast(table, word), ElementsAre(3, 4, 0));
  EXPECT_THAT(MergeFast(table, {5}), ElementsAre(5));
  EXPECT_THAT(MergeFast(table, {}), ElementsAre());
}

TEST(BpeMergeTest, DetectsTablesThatAreNotWellOrdered) {
  MergeTable table;
  ASSERT_TRUE(table.Add(2, 0, 5));  // Uses symbol 2 before a merge makes it.
  ASSERT_TRUE(table.Add(0, 1, 2));
  EXPECT_FALSE(table.WellOrdered());
  // Here the two procedures really differ: CLIP merges every (a,b) first,
  // the heap merges (2,a) as soon as the first (a,b) has made it.
  const std::vector<int32_t> word = {0, 1, 0, 1};
  EXPECT_THAT(MergeReference(table, word), ElementsAre(2, 2));
  EXPECT_THAT(MergeFast(table, word), ElementsAre(5, 1));
}

TEST(BpeMergeTest, FastEqualsReferenceOnRandomWellOrderedTables) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    // Random merges over 4 base symbols; each merge combines existing
    // symbols and creates a new one, so the table is well ordered.
    MergeTable table;
    int32_t next = 4;
    for (int m = 0; m < 40; ++m) {
      const int32_t a = static_cast<int32_t>(rng() % next);
      const int32_t b = static_cast<int32_t>(rng() % next);
      if (table.Find(a, b)) continue;
      ASSERT_TRUE(table.Add(a, b, next++));
    }
    ASSERT_TRUE(table.WellOrdered());
    for (int w = 0; w < 100; ++w) {
      std::vector<int32_t> word(rng() % 30);
      for (int32_t& s : word) s = static_cast<int32_t>(rng() % 4);
      ASSERT_EQ(MergeFast(table, word), MergeReference(table, word)) << "trial " << trial;
    }
  }
}

}  // namespace
}  // namespace provp::text
