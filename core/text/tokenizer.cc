// Implementation of CLIP's tokenizer: vocabulary loading (gzip'd OpenAI merge
// list or Hugging Face vocab.json + merges.txt), then clean -> pre-tokenise ->
// byte symbols -> BPE -> ids. Immutable after loading except the BPE cache,
// which a mutex guards, so Encode is safe from many threads.
#include "core/text/tokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/text/bpe_merge.h"
#include "core/text/text_cleaning.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "nlohmann/json.hpp"
#include "zlib.h"

namespace provp::text {
namespace {

// Vocabulary files are a few MB; the caps stop a corrupt or hostile file
// (or a gzip bomb) from allocating without bound.
constexpr uint64_t kMaxVocabFileBytes = uint64_t{64} << 20;
constexpr size_t kMaxInflatedBytes = size_t{64} << 20;
// OpenAI's file lists 262k merges; CLIP uses the first 49152-256-2.
constexpr size_t kOpenAiMergeCount = 49152 - 256 - 2;
// BPE results kept per tokenizer; words longer than kMaxCachedWordBytes are
// rare and not worth a slot.
constexpr size_t kMaxCacheEntries = 1 << 16;
constexpr size_t kMaxCachedWordBytes = 64;
// EncodeForContext allocates a row of context_length; CLIP uses 77.
constexpr int64_t kMaxContextLength = int64_t{1} << 20;

absl::StatusOr<std::string> Gunzip(const std::string& data, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    return absl::InternalError(absl::StrCat(path, ": cannot initialise zlib"));
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buffer[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof(buffer);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const bool truncated = rc == Z_BUF_ERROR && zs.avail_in == 0;
      std::string msg = zs.msg ? zs.msg : zError(rc);
      inflateEnd(&zs);
      return absl::InvalidArgumentError(
          truncated ? absl::StrCat(path, ": gzip data is truncated")
                    : absl::StrCat(path, ": corrupt gzip data (", msg, ")"));
    }
    out.append(buffer, sizeof(buffer) - zs.avail_out);
    if (out.size() > kMaxInflatedBytes) {
      inflateEnd(&zs);
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": decompresses to more than ", kMaxInflatedBytes, " bytes; not a BPE vocabulary"));
    }
  }
  inflateEnd(&zs);
  return out;
}

// "a b" -> {"a", "b"}; anything but two symbols is an error naming the line.
absl::StatusOr<std::pair<std::string, std::string>> ParseMergeLine(absl::string_view line,
                                                                   const std::string& path,
                                                                   size_t line_number) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r\v\f"), absl::SkipEmpty());
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(path, " line ", line_number,
                                                   ": expected two symbols, got \"",
                                                   absl::CEscape(line.substr(0, 80)), "\""));
  }
  return std::make_pair(std::string(parts[0]), std::string(parts[1]));
}

using Encoder = std::unordered_map<std::string, int32_t>;
using MergeList = std::vector<std::pair<std::string, std::string>>;

class BpeTokenizer final : public Tokenizer {
 public:
  // `encoder` maps every vocabulary string to its id; `merges` is in rank
  // order. `source` names the files in error messages.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(const Encoder& encoder,
                                                           const MergeList& merges,
                                                           int64_t vocab_size,
                                                           const std::string& source) {
    auto tok = std::unique_ptr<BpeTokenizer>(new BpeTokenizer());
    tok->vocab_size_ = vocab_size;
    auto lookup = [&](const std::string& symbol, const char* what) -> absl::StatusOr<int32_t> {
      auto it = encoder.find(symbol);
      if (it == encoder.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": vocabulary lacks ", what, " \"", absl::CEscape(symbol), "\""));
      }
      return it->second;
    };
    ASSIGN_OR_RETURN(tok->start_, lookup(kStartOfText, "the start token"));
    ASSIGN_OR_RETURN(tok->end_, lookup(kEndOfText, "the end token"));
    for (int b = 0; b < 256; ++b) {
      const std::string& symbol = ByteSymbol(static_cast<uint8_t>(b));
      ASSIGN_OR_RETURN(tok->byte_id_[b], lookup(symbol, "byte symbol"));
      ASSIGN_OR_RETURN(tok->byte_end_id_[b], lookup(symbol + kEndOfWord, "byte symbol"));
    }
    for (size_t r = 0; r < merges.size(); ++r) {
      const auto& [left, right] = merges[r];
      auto l = encoder.find(left);
      auto rt = encoder.find(right);
      auto m = encoder.find(left + right);
      if (l == encoder.end() || rt == encoder.end() || m == encoder.end()) {
        const std::string& missing =
            l == encoder.end() ? left : (rt == encoder.end() ? right : left + right);
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": merge ", r + 1, " (\"", absl::CEscape(left), " ", absl::CEscape(right),
            "\") references unknown symbol \"", absl::CEscape(missing), "\""));
      }
      if (!tok->merges_.Add(l->second, rt->second, m->second)) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": merge ", r + 1, " (\"",
                                                       absl::CEscape(left), " ",
                                                       absl::CEscape(right), "\") is a duplicate"));
      }
    }
    tok->well_ordered_ = tok->merges_.WellOrdered();
    return std::unique_ptr<Tokenizer>(std::move(tok));
  }

  absl::StatusOr<std::vector<int64_t>> Encode(const std::string& text) const override {
    ASSIGN_OR_RETURN(std::u32string cleaned, CleanText(text));
    std::vector<int64_t> ids;
    for (const std::string& piece : PreTokenize(cleaned)) {
      if (piece == kStartOfText) {
        ids.push_back(start_);
      } else if (piece == kEndOfText) {
        ids.push_back(end_);
      } else {
        AppendBpe(piece, &ids);
      }
    }
    return ids;
  }

  int64_t start_token() const override { return start_; }
  int64_t end_token() const override { return end_; }
  int64_t vocab_size() const override { return vocab_size_; }

 private:
  BpeTokenizer() = default;

  void AppendBpe(const std::string& piece, std::vector<int64_t>* ids) const {
    const bool cacheable = piece.size() <= kMaxCachedWordBytes;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      auto it = cache_.find(piece);
      if (it != cache_.end()) {
        ids->insert(ids->end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> word(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) {
      const auto b = static_cast<uint8_t>(piece[i]);
      word[i] = i + 1 == piece.size() ? byte_end_id_[b] : byte_id_[b];
    }
    // A list that is not well ordered (never CLIP's) needs CLIP's exact
    // per-round loop, quadratic in the word length.
    std::vector<int32_t> merged =
        well_ordered_ ? MergeFast(merges_, word) : MergeReference(merges_, std::move(word));
    ids->insert(ids->end(), merged.begin(), merged.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      // Dropping everything at the cap keeps memory bounded without LRU
      // bookkeeping; frequent words come back at once.
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      cache_.emplace(piece, std::move(merged));
    }
  }

  int32_t start_ = 0;
  int32_t end_ = 0;
  int64_t vocab_size_ = 0;
  int32_t byte_id_[256] = {};
  int32_t byte_end_id_[256] = {};
  MergeTable merges_;
  bool well_ordered_ = true;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromBpeFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string data, util::ReadFile(path, kMaxVocabFileBytes));
  if (data.size() >= 2 && static_cast<uint8_t>(data[0]) == 0x1f &&
      static_cast<uint8_t>(data[1]) == 0x8b) {
    ASSIGN_OR_RETURN(data, Gunzip(data, path));
  }
  std::vector<absl::string_view> lines = absl::StrSplit(data, '\n');
  // Line 0 is a header; CLIP takes lines [1, 1 + kOpenAiMergeCount).
  MergeList merges;
  const size_t last = std::min(lines.size(), 1 + kOpenAiMergeCount);
  for (size_t i = 1; i < last; ++i) {
    // A trailing newline leaves an empty last line; it is no merge.
    if (i + 1 == lines.size() && absl::StripAsciiWhitespace(lines[i]).empty()) break;
    ASSIGN_OR_RETURN(auto merge, ParseMergeLine(lines[i], path, i + 1));
    merges.push_back(std::move(merge));
  }
  if (merges.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no BPE merges after the header line"));
  }
  // CLIP's vocabulary order: byte symbols, the same with </w>, merged pairs,
  // then the two special tokens. A repeated string keeps its last id, as
  // Python's dict(zip(vocab, range(len(vocab)))) does.
  std::vector<std::string> vocab;
  vocab.reserve(512 + merges.size() + 2);
  for (uint8_t b : ByteSymbolOrder()) vocab.push_back(ByteSymbol(b));
  for (uint8_t b : ByteSymbolOrder()) vocab.push_back(ByteSymbol(b) + kEndOfWord);
  for (const auto& [left, right] : merges) vocab.push_back(left + right);
  vocab.emplace_back(kStartOfText);
  vocab.emplace_back(kEndOfText);
  Encoder encoder;
  for (size_t i = 0; i < vocab.size(); ++i) encoder[vocab[i]] = static_cast<int32_t>(i);
  return BpeTokenizer::Create(encoder, merges, static_cast<int64_t>(vocab.size()), path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocabAndMerges(
    const std::string& vocab_json_path, const std::string& merges_path) {
  ASSIGN_OR_RETURN(std::string vocab_text, util::ReadFile(vocab_json_path, kMaxVocabFileBytes));
  nlohmann::json json = nlohmann::json::parse(vocab_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(vocab_json_path, ": malformed JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(vocab_json_path, ": expected a JSON object of token -> id"));
  }
  Encoder encoder;
  std::unordered_set<int64_t> seen_ids;
  int64_t max_id = -1;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const nlohmann::json& value = it.value();
    if (!value.is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(
          vocab_json_path, ": token \"", absl::CEscape(it.key()), "\" has a non-integer id"));
    }
    const int64_t id = value.get<int64_t>();
    // Ids index embedding rows; 2^31 is far beyond any text vocabulary.
    if (id < 0 || id >= (int64_t{1} << 31) - 1) {
      return absl::InvalidArgumentError(absl::StrCat(vocab_json_path, ": token \"",
                                                     absl::CEscape(it.key()), "\" has id ", id,
                                                     ", outside [0, 2^31-1)"));
    }
    if (!seen_ids.insert(id).second) {
      return absl::InvalidArgumentError(absl::StrCat(vocab_json_path, ": id ", id,
                                                     " is given to more than one token (\"",
                                                     absl::CEscape(it.key()), "\" and another)"));
    }
    encoder[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, id);
  }

  ASSIGN_OR_RETURN(std::string merges_text, util::ReadFile(merges_path, kMaxVocabFileBytes));
  std::vector<absl::string_view> lines = absl::StrSplit(merges_text, '\n');
  MergeList merges;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i == 0 && absl::StartsWith(lines[i], "#version")) continue;
    if (absl::StripAsciiWhitespace(lines[i]).empty()) continue;
    ASSIGN_OR_RETURN(auto merge, ParseMergeLine(lines[i], merges_path, i + 1));
    merges.push_back(std::move(merge));
  }
  return BpeTokenizer::Create(encoder, merges, max_id + 1,
                              absl::StrCat(vocab_json_path, " + ", merges_path));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromPath(const std::string& path) {
  if (IsDirectory(path)) {
    return FromVocabAndMerges(path + "/vocab.json", path + "/merges.txt");
  }
  return FromBpeFile(path);
}

absl::StatusOr<std::vector<int64_t>> Tokenizer::EncodeForContext(const std::string& text,
                                                                 int64_t context_length,
                                                                 OverLength over_length) const {
  if (context_length < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context_length is ", context_length, "; it must hold the start and end tokens (>= 2)"));
  }
  if (context_length > kMaxContextLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("context_length is ", context_length, "; the limit is ", kMaxContextLength));
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, Encode(text));
  const auto needed = static_cast<int64_t>(ids.size()) + 2;
  if (needed > context_length && over_length == OverLength::kRefuse) {
    return absl::InvalidArgumentError(absl::StrCat(
        "text needs ", needed, " tokens with start and end; the context holds ", context_length));
  }
  std::vector<int64_t> row(static_cast<size_t>(context_length), 0);
  row[0] = start_token();
  const int64_t kept = std::min<int64_t>(static_cast<int64_t>(ids.size()), context_length - 2);
  std::copy(ids.begin(), ids.begin() + kept, row.begin() + 1);
  // Untruncated: end right after the ids; truncated: the last slot.
  row[static_cast<size_t>(kept + 1)] = end_token();
  return row;
}

}  // namespace provp::text
