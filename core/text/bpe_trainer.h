// Learns a byte-level BPE vocabulary in CLIP's layout from a caption corpus,
// for the project's built-in small CLIP, and writes it as Hugging Face
// vocab.json + merges.txt that Tokenizer::FromPath loads. Pure functions
// apart from WriteHfVocabulary's files; thread-compatible.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace provp::text {

struct BpeVocabulary {
  // Learned merges in rank order, as byte-symbol strings ("th", "e</w>").
  std::vector<std::pair<std::string, std::string>> merges;
  // Token strings by id: the 256 byte symbols (CLIP's order), the same with
  // "</w>", each new merged string once, then "<|startoftext|>" and
  // "<|endoftext|>" as the last two ids.
  std::vector<std::string> tokens;

  // Writes `dir`/vocab.json and `dir`/merges.txt (with a "#version: 0.2"
  // header), creating `dir` if needed; each file is replaced atomically.
  absl::Status WriteHfVocabulary(const std::string& dir) const;
};

// Cleans and splits every corpus string exactly as Tokenizer::Encode does
// (words end with "</w>"; special-token pieces are skipped), then performs up
// to `num_merges` merges, each of the most frequent adjacent symbol pair,
// ties broken by the lexicographically smallest (left, right) strings, so the
// result is deterministic. Stops early when every word is a single symbol.
// INVALID_ARGUMENT for invalid UTF-8 (naming the corpus index) or a
// num_merges outside [0, 1'000'000].
absl::StatusOr<BpeVocabulary> BuildBpeVocabulary(const std::vector<std::string>& corpus,
                                                 int num_merges);

}  // namespace provp::text
