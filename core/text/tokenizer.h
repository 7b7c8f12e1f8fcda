// CLIP's byte-level BPE tokenizer (OpenAI SimpleTokenizer ids exactly). Reads
// OpenAI's bpe_simple_vocab_16e6.txt.gz or Hugging Face vocab.json +
// merges.txt. Text cleaning as CLIP does it: NFC, HTML unescape twice,
// whitespace collapse, strip, lower-case (text_cleaning.h); then the CLIP word
// pattern and BPE per word. Immutable after loading; Encode is thread-safe
// (the bounded BPE cache is mutex-guarded). Unicode tables are utf8proc's, so
// code points assigned after its Unicode version may split differently.
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

  // Loading errors: NOT_FOUND for a missing file; INVALID_ARGUMENT naming the
  // file (and line or token) for corrupt/truncated gzip, malformed JSON,
  // duplicate ids or merges, merges whose symbols are not in the vocabulary,
  // or a vocabulary lacking a byte symbol or <|startoftext|>/<|endoftext|>.
  //
  // From bpe_simple_vocab_16e6.txt.gz (gzip) or its uncompressed text: line 1
  // is a header, the next 48894 lines are merges (as CLIP reads it).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromBpeFile(const std::string& path);
  // From a Hugging Face vocab.json + merges.txt pair.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocabAndMerges(
      const std::string& vocab_json_path, const std::string& merges_path);
  // A directory with vocab.json + merges.txt, or a .gz/.txt BPE file.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromPath(const std::string& path);

  virtual ~Tokenizer() = default;

  // BPE ids of the cleaned text, without start/end tokens. INVALID_ARGUMENT
  // for invalid UTF-8 or text over 1 MiB.
  virtual absl::StatusOr<std::vector<int64_t>> Encode(const std::string& text) const = 0;

  enum class OverLength { kTruncate, kRefuse };
  // [start, ids..., end] padded with 0 to context_length. Over-long text is
  // truncated with the last slot set to the end token, or refused with
  // INVALID_ARGUMENT, by the caller's choice. context_length must be in
  // [2, 2^20].
  absl::StatusOr<std::vector<int64_t>> EncodeForContext(
      const std::string& text, int64_t context_length = kDefaultContextLength,
      OverLength over_length = OverLength::kTruncate) const;

  virtual int64_t start_token() const = 0;  // 49406 for CLIP's vocabulary.
  virtual int64_t end_token() const = 0;    // 49407 for CLIP's vocabulary.
  virtual int64_t vocab_size() const = 0;
};

}  // namespace provp::text
