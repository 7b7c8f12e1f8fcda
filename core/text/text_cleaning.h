// CLIP's text cleaning and word splitting, shared by the tokenizer and the BPE
// vocabulary builder: UTF-8 validation, ftfy.fix_text (core/text/ftfy.h),
// HTML unescape twice, whitespace collapse and strip, Python-style
// lower-casing, then CLIP's word pattern matched by hand over code points.
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::text {

// Longest text accepted by CleanText, in bytes. Captions and prompts are far
// shorter; the cap keeps one request from holding megabytes of work buffers.
inline constexpr size_t kMaxTextBytes = size_t{1} << 20;

// Decodes strict UTF-8 (no overlongs, surrogates or values past U+10FFFF).
// INVALID_ARGUMENT names the byte offset of the first bad sequence.
absl::StatusOr<std::u32string> DecodeUtf8(absl::string_view text);
void AppendUtf8(char32_t c, std::string* out);
std::string EncodeUtf8(const std::u32string& text);

// ftfy.fix_text (mojibake, entities, quotes, ligatures, width, controls,
// NFC), html.unescape twice, strip, \s runs -> one space,
// then str.lower() semantics (simple Unicode lower-casing via utf8proc plus
// U+0130 -> "i̇" and the final-sigma rule). INVALID_ARGUMENT for invalid
// UTF-8 or text longer than kMaxTextBytes.
absl::StatusOr<std::u32string> CleanText(absl::string_view text);

// Python's str.isspace() set (what str.strip() removes).
bool IsPythonSpace(char32_t c);
// The regex module's \s: Unicode White_Space (no U+001C..U+001F), which CLIP
// uses to collapse whitespace and to split words.
bool IsRegexSpace(char32_t c);

// Splits cleaned text with CLIP's pattern
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (IGNORECASE; after lower-casing only U+017F 'ſ' folds onto an ASCII
// letter of the pattern). Returns the pieces as UTF-8; whitespace is dropped,
// and so is U+0345, which no alternative matches under IGNORECASE.
std::vector<std::string> PreTokenize(const std::u32string& cleaned);

// GPT-2/CLIP bytes_to_unicode: printable bytes map to themselves, the other
// 68 to U+0100 onwards. ByteSymbolOrder() is the order CLIP lists the 256
// symbols in its vocabulary (printable ranges first); ByteSymbol(b) is the
// UTF-8 string of byte b's symbol.
const std::array<uint8_t, 256>& ByteSymbolOrder();
const std::string& ByteSymbol(uint8_t byte);

inline constexpr char kEndOfWord[] = "</w>";
inline constexpr char kStartOfText[] = "<|startoftext|>";
inline constexpr char kEndOfText[] = "<|endoftext|>";

}  // namespace provp::text
