// Implementation of ftfy.fix_text's default pipeline. ftfy expresses most
// steps as regular expressions; here each is a hand-written scan with the
// same leftmost-first semantics (alternatives tried in the pattern's order,
// scanning resumes after a replaced match). Data (code pages, character
// classes, the badness pattern as sequences of classes, entity aliases, width
// map, ligatures) is generated into ftfy_tables.inc. Thread-safe: immutable
// tables, built once.
#include "core/text/ftfy.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/text/html_unescape.h"
#include "core/text/text_cleaning.h"
#include "utf8proc.h"

namespace provp::text::ftfy {
namespace {

struct CodeRange {
  char32_t lo;
  char32_t hi;
};

// One element of a badness alternative: a character class (possibly negated),
// '^' or '.'; `optional` marks a trailing '?'.
struct BadnessElement {
  enum Kind { kClass, kStart, kAnyButNewline };
  Kind kind;
  const CodeRange* ranges;
  size_t range_count;
  bool negated;
  bool optional;
};

struct BadnessAlternative {
  size_t first;
  size_t count;
};

struct UpperEntity {
  const char* name;
  const char32_t* value;
};

struct WidthEntry {
  char32_t from;
  const char32_t* to;
};

#include "core/text/ftfy_tables.inc"

constexpr size_t kLatin1 = 0;
constexpr size_t kSloppyWindows1252 = 1;
constexpr size_t kMacRoman = 8;
constexpr size_t kMaxSegment = 1000000;  // ftfy's max_decode_length.
constexpr int kMaxRounds = 32;

bool InRanges(const CodeRange* ranges, size_t n, char32_t c) {
  const CodeRange* end = ranges + n;
  const CodeRange* it =
      std::upper_bound(ranges, end, c, [](char32_t v, const CodeRange& r) { return v < r.lo; });
  return it != ranges && (it - 1)->hi >= c;
}

template <size_t N>
bool InSet(const CodeRange (&ranges)[N], char32_t c) {
  return InRanges(ranges, N, c);
}

// ---- Code pages -------------------------------------------------------------

struct Charmap {
  std::unordered_map<char32_t, uint8_t> encode;  // Inverse of kCharmapDecode.
  bool sloppy = false;
};

const std::array<Charmap, kCharmapCount>& Charmaps() {
  static const auto* maps = [] {
    auto* m = new std::array<Charmap, kCharmapCount>();
    for (size_t e = 0; e < kCharmapCount; ++e) {
      for (int b = 0; b < 256; ++b) (*m)[e].encode[kCharmapDecode[e][b]] = static_cast<uint8_t>(b);
      (*m)[e].sloppy = std::string_view(kCharmapNames[e]).substr(0, 7) == "sloppy-";
    }
    return m;
  }();
  return *maps;
}

// chardata.possible_encoding: every character is ASCII other than U+001A, or
// what one of bytes 0x80..0xFF or 0x1A decodes to.
bool PossibleEncoding(const std::u32string& text, size_t enc) {
  const Charmap& map = Charmaps()[enc];
  for (char32_t c : text) {
    if (c < 0x80 && c != 0x1A) continue;
    auto it = map.encode.find(c);
    if (it == map.encode.end() || (it->second < 0x80 && it->second != 0x1A)) return false;
  }
  return true;
}

// Callers check PossibleEncoding first.
std::string EncodeCharmap(const std::u32string& text, size_t enc) {
  const Charmap& map = Charmaps()[enc];
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) out.push_back(static_cast<char>(map.encode.at(c)));
  return out;
}

bool IsAscii(const std::u32string& text) {
  return std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
}

// ---- Byte patterns (restore_byte_a0, replace_lossy_sequences) -------------

using ByteClass = std::bitset<256>;

ByteClass Bytes(std::initializer_list<std::pair<int, int>> ranges) {
  ByteClass set;
  for (auto [lo, hi] : ranges) {
    for (int b = lo; b <= hi; ++b) set.set(static_cast<size_t>(b));
  }
  return set;
}

using BytePattern = std::vector<ByteClass>;

bool MatchesAt(const std::string& s, size_t pos, const BytePattern& p) {
  if (pos + p.size() > s.size()) return false;
  for (size_t k = 0; k < p.size(); ++k) {
    if (!p[k].test(static_cast<uint8_t>(s[pos + k]))) return false;
  }
  return true;
}

// Length of the first alternative matching at pos, 0 if none.
size_t FirstMatch(const std::string& s, size_t pos, const std::vector<BytePattern>& alternatives) {
  for (const BytePattern& p : alternatives) {
    if (MatchesAt(s, pos, p)) return p.size();
  }
  return 0;
}

// chardata.ALTERED_UTF8_RE: UTF-8 sequences whose 0xA0 became a space.
const std::vector<BytePattern>& AlteredUtf8() {
  static const auto* alts = [] {
    const ByteClass space = Bytes({{0x20, 0x20}});
    const ByteClass cont = Bytes({{0x80, 0xBF}});
    const ByteClass cont_no_85_a0 = Bytes({{0x80, 0x84}, {0x86, 0x9F}, {0xA1, 0xBF}});
    const ByteClass f0 = Bytes({{0xF0, 0xF0}});
    return new std::vector<BytePattern>{
        {Bytes({{0xC2, 0xC3}, {0xC5, 0xC5}, {0xCE, 0xCE}, {0xD0, 0xD0}, {0xD9, 0xD9}}), space},
        {Bytes({{0xE2, 0xE3}}), space, cont_no_85_a0},
        {Bytes({{0xE0, 0xE3}}), cont_no_85_a0, space},
        {f0, space, cont, cont},
        {f0, cont, space, cont},
        {f0, cont, cont, space},
    };
  }();
  return *alts;
}

// chardata.LOSSY_UTF8_RE: UTF-8 sequences with a byte lost to 0x1A (or '?').
const std::vector<BytePattern>& LossyUtf8() {
  static const auto* alts = [] {
    const ByteClass sub = Bytes({{0x1A, 0x1A}});
    const ByteClass sub_q = Bytes({{0x1A, 0x1A}, {'?', '?'}});
    const ByteClass sub_q_cont = Bytes({{0x1A, 0x1A}, {'?', '?'}, {0x80, 0xBF}});
    const ByteClass sub_cont = Bytes({{0x1A, 0x1A}, {0x80, 0xBF}});
    const ByteClass ed = Bytes({{0xED, 0xED}});
    const ByteClass high = Bytes({{0xA0, 0xAF}});
    const ByteClass low = Bytes({{0xB0, 0xBF}});
    const ByteClass lead3 = Bytes({{0xE0, 0xEF}});
    const ByteClass lead4 = Bytes({{0xF0, 0xF4}});
    return new std::vector<BytePattern>{
        {Bytes({{0xC2, 0xDF}}), sub},
        {Bytes({{0xC2, 0xC3}}), Bytes({{'?', '?'}})},
        {ed, high, sub_q, ed, low, sub_q_cont},
        {ed, high, sub_q_cont, ed, low, sub_q},
        {lead3, sub_q, sub_cont},
        {lead3, sub_cont, sub_q},
        {lead4, sub_q, sub_cont, sub_cont},
        {lead4, sub_cont, sub_q, sub_cont},
        {lead4, sub_cont, sub_cont, sub_q},
        {sub},
    };
  }();
  return *alts;
}

bool SearchAny(const std::string& s, const std::vector<BytePattern>& alternatives) {
  for (size_t pos = 0; pos < s.size(); ++pos) {
    if (FirstMatch(s, pos, alternatives) > 0) return true;
  }
  return false;
}

// ---- UTF-8 decoders ---------------------------------------------------------

std::optional<std::u32string> DecodeUtf8Strict(std::string_view bytes) {
  auto decoded = DecodeUtf8(absl::string_view(bytes.data(), bytes.size()));
  if (!decoded.ok()) return std::nullopt;
  return *std::move(decoded);
}

// ftfy's "utf-8-variants": UTF-8 plus Java's C0 80 for U+0000 and CESU-8
// surrogate pairs (ED A0-AF xx ED B0-BF xx); any other surrogate fails.
std::optional<std::u32string> DecodeUtf8Variants(const std::string& bytes) {
  std::u32string out;
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] == 0xC0 && i + 1 < n && s[i + 1] == 0x80) {
      out.push_back(0);
      i += 2;
      continue;
    }
    if (s[i] == 0xED && (i + 1 == n || (s[i + 1] >= 0xA0 && s[i + 1] <= 0xBF))) {
      if (i + 6 <= n && s[i + 1] <= 0xAF && (s[i + 2] & 0xC0) == 0x80 && s[i + 3] == 0xED &&
          s[i + 4] >= 0xB0 && s[i + 4] <= 0xBF && (s[i + 5] & 0xC0) == 0x80) {
        out.push_back(static_cast<char32_t>(((s[i + 1] & 0x0F) << 16) + ((s[i + 2] & 0x3F) << 10) +
                                            ((s[i + 4] & 0x0F) << 6) + (s[i + 5] & 0x3F) +
                                            0x10000));
        i += 6;
        continue;
      }
      return std::nullopt;
    }
    // One ordinary sequence, strictly.
    size_t len = s[i] < 0x80 ? 1 : (s[i] & 0xE0) == 0xC0 ? 2 : (s[i] & 0xF0) == 0xE0 ? 3 : 4;
    len = std::min(len, n - i);
    auto one = DecodeUtf8Strict(std::string_view(bytes).substr(i, len));
    if (!one || one->size() != 1) return std::nullopt;
    out.push_back((*one)[0]);
    i += len;
  }
  return out;
}

// ---- Badness ----------------------------------------------------------------

bool MatchElements(const std::u32string& text, size_t pos, const BadnessElement* e, size_t left) {
  if (left == 0) return true;
  if (e->optional && MatchElements(text, pos, e + 1, left - 1)) return true;
  switch (e->kind) {
    case BadnessElement::kStart:
      return pos == 0 && MatchElements(text, pos, e + 1, left - 1);
    case BadnessElement::kAnyButNewline:
      return pos < text.size() && text[pos] != U'\n' &&
             MatchElements(text, pos + 1, e + 1, left - 1);
    case BadnessElement::kClass:
      return pos < text.size() && InRanges(e->ranges, e->range_count, text[pos]) != e->negated &&
             MatchElements(text, pos + 1, e + 1, left - 1);
  }
  return false;
}

// ---- decode_inconsistent_utf8 ----------------------------------------------

// Length of the run of UTF-8-looking sequences at pos (UTF8_DETECTOR_RE's
// group, repeated greedily; within one repetition the 2-, 3- then 4-byte
// shapes are tried in that order), 0 if none.
size_t Utf8LookingRun(const std::u32string& text, size_t pos) {
  auto cont = [&](size_t p, size_t count) {
    if (p + count > text.size()) return false;
    for (size_t k = 0; k < count; ++k) {
      if (!InSet(kUtf8Clue_utf8_continuation, text[p + k])) return false;
    }
    return true;
  };
  size_t total = 0;
  while (pos + total < text.size()) {
    const size_t p = pos + total;
    const char32_t c = text[p];
    if (InSet(kUtf8Clue_utf8_first_of_2, c) && cont(p + 1, 1)) {
      total += 2;
    } else if (InSet(kUtf8Clue_utf8_first_of_3, c) && cont(p + 1, 2)) {
      total += 3;
    } else if (InSet(kUtf8Clue_utf8_first_of_4, c) && cont(p + 1, 3)) {
      total += 4;
    } else {
      break;
    }
  }
  return total;
}

// ---- fix_encoding, one step -------------------------------------------------

std::u32string FixEncodingOneStep(const std::u32string& text) {
  if (text.empty() || IsAscii(text) || !IsBad(text)) return text;
  bool latin1_possible = false;
  for (size_t enc = 0; enc < kCharmapCount; ++enc) {
    if (!PossibleEncoding(text, enc)) continue;
    if (enc == kLatin1) latin1_possible = true;
    std::string bytes = EncodeCharmap(text, enc);
    // ftfy skips restore_byte_a0 for MacRoman, where "– " would match.
    if (enc != kMacRoman && SearchAny(bytes, AlteredUtf8())) bytes = RestoreByteA0(bytes);
    if (Charmaps()[enc].sloppy) bytes = ReplaceLossySequences(bytes);
    const bool variants =
        bytes.find('\xED') != std::string::npos || bytes.find('\xC0') != std::string::npos;
    std::optional<std::u32string> fixed =
        variants ? DecodeUtf8Variants(bytes) : DecodeUtf8Strict(bytes);
    if (fixed) return *std::move(fixed);
  }
  std::u32string fixed = DecodeInconsistentUtf8(text);
  if (fixed != text) return fixed;
  // ftfy compares against the name "windows-1252", which its list of code
  // pages never holds (it has "sloppy-windows-1252"), so Latin-1 text always
  // takes the strict Latin-1 -> windows-1252 branch.
  if (latin1_possible) {
    std::u32string recoded;
    bool ok = true;
    for (char32_t c : text) {
      const char32_t d = kWindows1252Strict[c];  // c < 256: Latin-1 encodable.
      if (d == 0xFFFFFFFF) {
        ok = false;
        break;
      }
      recoded.push_back(d);
    }
    if (ok && recoded != text) return recoded;
  }
  if (std::any_of(text.begin(), text.end(), [](char32_t c) { return c >= 0x80 && c <= 0x9F; })) {
    return FixC1Controls(text);
  }
  return text;
}

template <size_t N>
std::u32string TranslateTable(const std::u32string& text, const WidthEntry (&table)[N]) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    const WidthEntry* it =
        std::lower_bound(std::begin(table), std::end(table), c,
                         [](const WidthEntry& e, char32_t v) { return e.from < v; });
    if (it != std::end(table) && it->from == c) {
      out.append(it->to);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool IsAsciiAlnum(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::optional<std::u32string_view> LookupUpperEntity(std::string_view name) {
  const UpperEntity* begin = std::begin(kFtfyUpperEntities);
  const UpperEntity* end = std::end(kFtfyUpperEntities);
  const UpperEntity* it = std::lower_bound(
      begin, end, name,
      [](const UpperEntity& e, std::string_view n) { return std::string_view(e.name) < n; });
  if (it != end && std::string_view(it->name) == name) return std::u32string_view(it->value);
  return std::nullopt;
}

}  // namespace

// fixes.unescape_html: "&#?[0-9A-Za-z]{1,24};" matches; a name that is an
// html5 key with ';' or one of ftfy's upper-case aliases is decoded, a
// numeric reference through html.unescape unless that left a ';'.
std::u32string UnescapeHtml(const std::u32string& text) {
  if (text.find(U'&') == std::u32string::npos) return text;
  std::u32string out;
  out.reserve(text.size());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (text[i] != U'&') {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i + 1;
    const bool numeric = j < n && text[j] == U'#';
    if (numeric) ++j;
    size_t run = 0;
    while (j + run < n && IsAsciiAlnum(text[j + run])) ++run;
    if (run < 1 || run > 24 || j + run >= n || text[j + run] != U';') {
      out.push_back(text[i++]);
      continue;
    }
    const size_t end = j + run + 1;  // Past the ';'.
    const std::u32string match = text.substr(i, end - i);
    if (numeric) {
      std::u32string decoded = HtmlUnescape(match);
      out += decoded.find(U';') == std::u32string::npos ? decoded : match;
    } else {
      std::string name;
      for (size_t k = j; k < j + run; ++k) name.push_back(static_cast<char>(text[k]));
      if (auto v = LookupHtml5Entity(name + ";")) {
        out.append(*v);
      } else if (auto u = LookupUpperEntity(name)) {
        out.append(*u);
      } else {
        out += match;
      }
    }
    i = end;
  }
  return out;
}

bool IsBad(const std::u32string& text) {
  for (size_t pos = 0; pos <= text.size(); ++pos) {
    for (const BadnessAlternative& alt : kBadnessAlternatives) {
      if (MatchElements(text, pos, &kBadnessElements[alt.first], alt.count)) return true;
    }
  }
  return false;
}

// fixes.decode_inconsistent_utf8: each UTF-8-looking run not preceded by a
// strict continuation character is re-decoded on its own when it is shorter
// than the whole text and looks bad.
std::u32string DecodeInconsistentUtf8(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const bool after_strict = pos > 0 && InSet(kUtf8Clue_utf8_continuation_strict, text[pos - 1]);
    const size_t run = after_strict ? 0 : Utf8LookingRun(text, pos);
    if (run == 0) {
      out.push_back(text[pos++]);
      continue;
    }
    const std::u32string piece = text.substr(pos, run);
    out += (piece.size() < text.size() && IsBad(piece)) ? FixEncoding(piece) : piece;
    pos += run;
  }
  return out;
}

std::u32string FixEncoding(const std::u32string& text) {
  std::u32string current = text;
  // Each step either changes the text or ends the loop; the bound only
  // guards against a cycle ftfy itself would loop on forever.
  for (int round = 0; round < kMaxRounds; ++round) {
    std::u32string next = FixEncodingOneStep(current);
    if (next == current) break;
    current = std::move(next);
  }
  return current;
}

std::string RestoreByteA0(const std::string& bytes) {
  // A_GRAVE_WORD_RE: "\xc3 " not followed by " ", "quele", "quela",
  // "quilo" or "s " gets its 0xA0 back and keeps the space ("Ã la" -> "à la").
  std::string step1;
  step1.reserve(bytes.size() + 8);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '\xC3' && i + 1 < bytes.size() && bytes[i + 1] == ' ') {
      const std::string_view rest = std::string_view(bytes).substr(i + 2);
      const bool excluded = rest.substr(0, 1) == " " || rest.substr(0, 5) == "quele" ||
                            rest.substr(0, 5) == "quela" || rest.substr(0, 5) == "quilo" ||
                            rest.substr(0, 2) == "s ";
      if (!excluded) {
        step1 += "\xC3\xA0 ";
        ++i;
        continue;
      }
    }
    step1.push_back(bytes[i]);
  }
  std::string out;
  out.reserve(step1.size());
  size_t i = 0;
  while (i < step1.size()) {
    const size_t len = FirstMatch(step1, i, AlteredUtf8());
    if (len == 0) {
      out.push_back(step1[i++]);
      continue;
    }
    for (size_t k = 0; k < len; ++k) out.push_back(step1[i + k] == ' ' ? '\xA0' : step1[i + k]);
    i += len;
  }
  return out;
}

std::string ReplaceLossySequences(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t len = FirstMatch(bytes, i, LossyUtf8());
    if (len == 0) {
      out.push_back(bytes[i++]);
      continue;
    }
    out += "\xEF\xBF\xBD";  // U+FFFD in UTF-8.
    i += len;
  }
  return out;
}

std::u32string FixC1Controls(const std::u32string& text) {
  std::u32string out = text;
  for (char32_t& c : out) {
    if (c >= 0x80 && c <= 0x9F) c = kCharmapDecode[kSloppyWindows1252][c];
  }
  return out;
}

std::u32string FixLatinLigatures(const std::u32string& text) {
  return TranslateTable(text, kLigatures);
}

std::u32string FixCharacterWidth(const std::u32string& text) {
  return TranslateTable(text, kWidthMap);
}

std::u32string UncurlQuotes(const std::u32string& text) {
  std::u32string out = text;
  for (char32_t& c : out) {
    if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) {
      c = U'\'';
    } else if (c >= 0x201C && c <= 0x201F) {
      c = U'"';
    }
  }
  return out;
}

std::u32string FixLineBreaks(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') continue;  // CRLF -> LF
    out.push_back(c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85 ? U'\n' : c);
  }
  return out;
}

std::u32string FixSurrogates(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < text.size() && text[i + 1] >= 0xDC00 &&
        text[i + 1] <= 0xDFFF) {
      out.push_back(0x10000 + (c - 0xD800) * 0x400 + (text[i + 1] - 0xDC00));
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      out.push_back(0xFFFD);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ANSI_RE = "\033\[((?:\d|;)*)([a-zA-Z])"; \d is any Unicode decimal digit.
std::u32string RemoveTerminalEscapes(const std::u32string& text) {
  if (text.find(U'\x1b') == std::u32string::npos) return text;
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {
      size_t j = i + 2;
      while (j < text.size() && (text[j] == U';' || utf8proc_category(static_cast<utf8proc_int32_t>(
                                                        text[j])) == UTF8PROC_CATEGORY_ND)) {
        ++j;
      }
      if (j < text.size() &&
          ((text[j] >= U'a' && text[j] <= U'z') || (text[j] >= U'A' && text[j] <= U'Z'))) {
        i = j + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

std::u32string RemoveControlChars(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    const bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF ||
                         (c >= 0xFFF9 && c <= 0xFFFC);
    if (!control) out.push_back(c);
  }
  return out;
}

std::u32string NormalizeNfc(const std::u32string& text) {
  if (IsAscii(text)) return text;  // ASCII is NFC already.
  const std::string utf8 = EncodeUtf8(text);
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t len =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                   static_cast<utf8proc_ssize_t>(utf8.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (len < 0) return text;  // Only on allocation failure: leave the text as it was.
  auto decoded = DecodeUtf8(
      absl::string_view(reinterpret_cast<const char*>(mapped), static_cast<size_t>(len)));
  return decoded.ok() ? *std::move(decoded) : text;
}

std::u32string FixSegment(const std::u32string& text, bool unescape_html) {
  std::u32string current = text;
  for (int round = 0; round < kMaxRounds; ++round) {
    std::u32string t = current;
    if (unescape_html) t = UnescapeHtml(t);
    t = FixEncoding(t);
    t = FixC1Controls(t);
    t = FixLatinLigatures(t);
    t = FixCharacterWidth(t);
    t = UncurlQuotes(t);
    t = FixLineBreaks(t);
    t = FixSurrogates(t);
    t = RemoveTerminalEscapes(t);
    t = RemoveControlChars(t);
    t = NormalizeNfc(t);
    if (t == current) break;
    current = std::move(t);
  }
  return current;
}

std::u32string FixText(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  bool unescape_html = true;  // "auto": until a segment holds '<'.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(U'\n', pos);
    end = end == std::u32string::npos ? text.size() : end + 1;
    end = std::min(end, pos + kMaxSegment);
    const std::u32string segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != std::u32string::npos) unescape_html = false;
    out += FixSegment(segment, unescape_html);
    pos = end;
  }
  return out;
}

}  // namespace provp::text::ftfy
