// CLIP's byte-level BPE tokenizer. Reads OpenAI's bpe_simple_vocab_16e6.txt.gz
// or Hugging Face vocab.json + merges.txt. Text cleaning as CLIP does it:
// NFC, HTML unescape twice, whitespace collapse, strip, lower-case; then the
// CLIP word pattern (Unicode letters, numbers, other) and BPE per word.
// Immutable after Create; Encode is thread-safe (the BPE cache is guarded).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace provp::text {

class Tokenizer {
 public:
  static constexpr int64_t kDefaultContextLength = 77;

  // From bpe_simple_vocab_16e6.txt.gz (gzip) or its uncompressed text.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromBpeFile(const std::string& path);
  // From a Hugging Face vocab.json + merges.txt pair.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocabAndMerges(
      const std::string& vocab_json_path, const std::string& merges_path);
  // A directory with vocab.json + merges.txt, or a .gz/.txt BPE file.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromPath(const std::string& path);

  virtual ~Tokenizer() = default;

  // BPE ids of the cleaned text, without start/end tokens.
  virtual absl::StatusOr<std::vector<int64_t>> Encode(const std::string& text) const = 0;

  enum class OverLength { kTruncate, kRefuse };
  // [start, ids..., end] padded with 0 to context_length. Over-long text is
  // truncated with the last slot set to the end token, or refused with
  // INVALID_ARGUMENT, by the caller's choice.
  absl::StatusOr<std::vector<int64_t>> EncodeForContext(
      const std::string& text, int64_t context_length = kDefaultContextLength,
      OverLength over_length = OverLength::kTruncate) const;

  virtual int64_t start_token() const = 0;  // 49406 for CLIP's vocabulary.
  virtual int64_t end_token() const = 0;    // 49407 for CLIP's vocabulary.
  virtual int64_t vocab_size() const = 0;
};

}  // namespace provp::text
