// Implementation of the BPE vocabulary builder. Pair counts are kept
// incrementally: a merge only revisits the words that contain its pair, and
// an ordered set yields the best pair, so training is near-linear in the
// corpus per merge touched. Thread-compatible: all state is local.
#include "core/text/bpe_trainer.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <tuple>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "core/text/text_cleaning.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace provp::text {
namespace {

constexpr int kMaxMerges = 1'000'000;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class Trainer {
 public:
  Trainer() {
    for (uint8_t b : ByteSymbolOrder()) Intern(ByteSymbol(b));
    for (uint8_t b : ByteSymbolOrder()) Intern(ByteSymbol(b) + kEndOfWord);
  }

  void AddWord(const std::string& piece, int64_t count) {
    std::vector<int32_t> symbols;
    for (size_t i = 0; i < piece.size(); ++i) {
      std::string s = ByteSymbol(static_cast<uint8_t>(piece[i]));
      if (i + 1 == piece.size()) s += kEndOfWord;
      symbols.push_back(Intern(s));
    }
    words_.push_back({std::move(symbols), count});
    CountPairs(static_cast<int>(words_.size()) - 1, +1);
  }

  // One merge of the best pair; false when no pair is left.
  bool MergeBest(BpeVocabulary* vocab) {
    if (best_.empty()) return false;
    const auto [count, left, right] = *best_.begin();
    (void)count;
    const std::string merged_string = symbols_[left] + symbols_[right];
    const bool is_new = ids_.find(merged_string) == ids_.end();
    const int32_t merged = Intern(merged_string);
    vocab->merges.emplace_back(symbols_[left], symbols_[right]);
    if (is_new) vocab->tokens.push_back(merged_string);

    std::vector<int> affected = std::move(pair_words_[PairKey(left, right)]);
    pair_words_.erase(PairKey(left, right));
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    for (int w : affected) {
      std::vector<int32_t>& s = words_[w].symbols;
      bool present = false;
      for (size_t i = 0; i + 1 < s.size() && !present; ++i)
        present = s[i] == left && s[i + 1] == right;
      if (!present) continue;  // Stale index entry.
      CountPairs(w, -1);
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          out.push_back(merged);
          i += 2;
        } else {
          out.push_back(s[i++]);
        }
      }
      s.swap(out);
      CountPairs(w, +1);
    }
    return true;
  }

 private:
  struct Word {
    std::vector<int32_t> symbols;
    int64_t count;
  };
  // Best first: higher count, then smaller left string, then smaller right.
  struct Order {
    const std::vector<std::string>* symbols;
    bool operator()(const std::tuple<int64_t, int32_t, int32_t>& x,
                    const std::tuple<int64_t, int32_t, int32_t>& y) const {
      if (std::get<0>(x) != std::get<0>(y)) return std::get<0>(x) > std::get<0>(y);
      const std::string& xl = (*symbols)[std::get<1>(x)];
      const std::string& yl = (*symbols)[std::get<1>(y)];
      if (xl != yl) return xl < yl;
      return (*symbols)[std::get<2>(x)] < (*symbols)[std::get<2>(y)];
    }
  };

  int32_t Intern(const std::string& s) {
    auto [it, inserted] = ids_.emplace(s, static_cast<int32_t>(symbols_.size()));
    if (inserted) symbols_.push_back(s);
    return it->second;
  }

  // Adds (sign +1) or removes (-1) word w's adjacent pairs from the counts.
  void CountPairs(int w, int sign) {
    const std::vector<int32_t>& s = words_[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t key = PairKey(s[i], s[i + 1]);
      int64_t& count = pair_counts_[key];
      if (count > 0) best_.erase({count, s[i], s[i + 1]});
      count += sign * words_[w].count;
      if (count > 0) {
        best_.insert({count, s[i], s[i + 1]});
      } else {
        pair_counts_.erase(key);
      }
      if (sign > 0) pair_words_[key].push_back(w);
    }
  }

  std::vector<std::string> symbols_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> pair_counts_;
  std::unordered_map<uint64_t, std::vector<int>> pair_words_;
  std::set<std::tuple<int64_t, int32_t, int32_t>, Order> best_{Order{&symbols_}};
};

}  // namespace

absl::StatusOr<BpeVocabulary> BuildBpeVocabulary(const std::vector<std::string>& corpus,
                                                 int num_merges) {
  if (num_merges < 0 || num_merges > kMaxMerges) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_merges is ", num_merges, "; it must be in [0, ", kMaxMerges, "]"));
  }
  // Word frequencies in a sorted map so words enter the trainer in a fixed
  // order (the result does not depend on it, but the index vectors do).
  std::map<std::string, int64_t> word_counts;
  for (size_t i = 0; i < corpus.size(); ++i) {
    auto cleaned = CleanText(corpus[i]);
    if (!cleaned.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("corpus[", i, "]: ", cleaned.status().message()));
    }
    for (std::string& piece : PreTokenize(*cleaned)) {
      if (piece == kStartOfText || piece == kEndOfText) continue;
      ++word_counts[std::move(piece)];
    }
  }
  BpeVocabulary vocab;
  for (uint8_t b : ByteSymbolOrder()) vocab.tokens.push_back(ByteSymbol(b));
  for (uint8_t b : ByteSymbolOrder()) vocab.tokens.push_back(ByteSymbol(b) + kEndOfWord);
  Trainer trainer;
  for (const auto& [word, count] : word_counts) trainer.AddWord(word, count);
  for (int m = 0; m < num_merges && trainer.MergeBest(&vocab); ++m) {
  }
  vocab.tokens.emplace_back(kStartOfText);
  vocab.tokens.emplace_back(kEndOfText);
  return vocab;
}

absl::Status BpeVocabulary::WriteHfVocabulary(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
  }
  nlohmann::ordered_json vocab_json = nlohmann::ordered_json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab_json[tokens[i]] = static_cast<int64_t>(i);
  if (vocab_json.size() != tokens.size()) {
    return absl::InvalidArgumentError("BpeVocabulary.tokens holds a token twice");
  }
  std::string merges_text = "#version: 0.2\n";
  for (const auto& [left, right] : merges) absl::StrAppend(&merges_text, left, " ", right, "\n");
  // Token strings are valid UTF-8 by construction; `replace` keeps dump()
  // from throwing if a caller filled the struct by hand.
  RETURN_IF_ERROR(util::WriteFileAtomic(
      dir + "/vocab.json",
      vocab_json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)));
  return util::WriteFileAtomic(dir + "/merges.txt", merges_text);
}

}  // namespace provp::text
