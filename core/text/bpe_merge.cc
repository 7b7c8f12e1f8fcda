// Implementation of the BPE merge procedures. Thread-safe: MergeTable is
// read-only once built; the procedures keep their state on the stack.
#include "core/text/bpe_merge.h"

#include <algorithm>
#include <limits>
#include <queue>

namespace provp::text {

bool MergeTable::Add(int32_t left, int32_t right, int32_t merged) {
  const auto rank = static_cast<int32_t>(parts_.size());
  if (!merges_.emplace(Key(left, right), Merge{rank, merged}).second) return false;
  parts_.emplace_back(left, right);
  produced_.push_back(merged);
  return true;
}

const MergeTable::Merge* MergeTable::Find(int32_t left, int32_t right) const {
  auto it = merges_.find(Key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

bool MergeTable::WellOrdered() const {
  // Latest rank that produces each symbol id.
  std::unordered_map<int32_t, int32_t> last_producer;
  for (size_t r = 0; r < produced_.size(); ++r) {
    last_producer[produced_[r]] = static_cast<int32_t>(r);
  }
  for (size_t r = 0; r < parts_.size(); ++r) {
    for (int32_t part : {parts_[r].first, parts_[r].second}) {
      auto it = last_producer.find(part);
      if (it != last_producer.end() && it->second >= static_cast<int32_t>(r)) return false;
    }
  }
  return true;
}

std::vector<int32_t> MergeReference(const MergeTable& table, std::vector<int32_t> word) {
  while (word.size() > 1) {
    const MergeTable::Merge* best = nullptr;
    int32_t first = 0;
    int32_t second = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      const MergeTable::Merge* m = table.Find(word[i], word[i + 1]);
      if (m && (!best || m->rank < best->rank)) {
        best = m;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (!best) break;
    std::vector<int32_t> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(best->merged);
        i += 2;
      } else {
        merged.push_back(word[i]);
        ++i;
      }
    }
    word.swap(merged);
  }
  return word;
}

std::vector<int32_t> MergeFast(const MergeTable& table, const std::vector<int32_t>& word) {
  const int n = static_cast<int>(word.size());
  if (n < 2) return word;
  std::vector<int32_t> id = word;
  std::vector<int> next(n);
  std::vector<int> prev(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  struct Candidate {
    int32_t rank;
    int pos;  // Index of the left symbol; smaller is further left.
    int32_t left;
    int32_t right;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const MergeTable::Merge* m = table.Find(id[pos], id[next[pos]])) {
      heap.push({m->rank, pos, id[pos], id[next[pos]]});
    }
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // Symbols only grow, so unchanged ids mean the pair is still there.
    if (!alive[c.pos] || id[c.pos] != c.left) continue;
    const int right = next[c.pos];
    if (right < 0 || id[right] != c.right) continue;
    id[c.pos] = table.Find(c.left, c.right)->merged;
    alive[right] = false;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
  return out;
}

}  // namespace provp::text
