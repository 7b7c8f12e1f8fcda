// The BPE merge step of CLIP's tokenizer over symbol ids: a rank table of
// (left, right) -> (rank, merged id) and two merge procedures that give the
// same result on well-ordered merge lists. Immutable after construction;
// thread-safe for concurrent reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace provp::text {

class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };

  // Adds the merge with the next rank. Returns false if the pair is already
  // present (duplicate line).
  bool Add(int32_t left, int32_t right, int32_t merged);
  const Merge* Find(int32_t left, int32_t right) const;
  size_t size() const { return merges_.size(); }

  // True when every merge ranks after each merge that produces one of its two
  // parts, so merging the lowest-ranked pair occurrence first (MergeFast)
  // equals CLIP's merge-all-occurrences-per-round loop (MergeReference).
  bool WellOrdered() const;

 private:
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::pair<int32_t, int32_t>> parts_;  // By rank.
  std::vector<int32_t> produced_;                   // Merged id by rank.
};

// CLIP's bpe(): repeatedly take the lowest-ranked adjacent pair and merge all
// its non-overlapping occurrences left to right. O(n^2) in the word length.
std::vector<int32_t> MergeReference(const MergeTable& table, std::vector<int32_t> word);

// Lowest rank, leftmost occurrence first, with a heap and a linked list:
// O(n log n). Equals MergeReference when table.WellOrdered().
std::vector<int32_t> MergeFast(const MergeTable& table, const std::vector<int32_t>& word);

}  // namespace provp::text
