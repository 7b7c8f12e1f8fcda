// Implementation of CLIP's cleaning and pre-tokenisation over code points.
// ftfy.fix_text runs first (core/text/ftfy.h). The Unicode tables come from
// utf8proc (categories, simple lower-case mapping); the Python-specific parts (\s set, full
// lower-casing of U+0130, final sigma) are spelled out here. Thread-safe: no mutable state.
#include "core/text/text_cleaning.h"

#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/text/ftfy.h"
#include "core/text/html_unescape.h"
#include "utf8proc.h"

namespace provp::text {
namespace {

bool IsLetter(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}

bool IsNumber(char32_t c) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

// Unicode "Cased" (approximated by having a case mapping or being Lt) and
// "Case_Ignorable" (marks, format, modifier letters/symbols and the
// word-internal punctuation of UAX #29), as Python's final-sigma rule uses.
bool IsCased(char32_t c) {
  auto cp = static_cast<utf8proc_int32_t>(c);
  return utf8proc_islower(cp) || utf8proc_isupper(cp) ||
         utf8proc_category(cp) == UTF8PROC_CATEGORY_LT;
}

bool IsCaseIgnorable(char32_t c) {
  switch (c) {
    case 0x27:
    case 0x2E:
    case 0x3A:
    case 0x5E:
    case 0x60:
    case 0xA8:
    case 0xAD:
    case 0xAF:
    case 0xB4:
    case 0xB7:
    case 0xB8:
    case 0x387:
    case 0x55F:
    case 0x5F4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xFE13:
    case 0xFE52:
    case 0xFE55:
    case 0xFF07:
    case 0xFF0E:
    case 0xFF1A:
      return true;
    default:
      break;
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      return false;
  }
}

bool FinalSigma(const std::u32string& text, size_t i) {
  size_t j = i;
  char32_t c = 0;
  bool found = false;
  while (j > 0) {
    c = text[--j];
    if (!IsCaseIgnorable(c)) {
      found = true;
      break;
    }
  }
  if (!found || !IsCased(c)) return false;
  for (size_t k = i + 1; k < text.size(); ++k) {
    if (!IsCaseIgnorable(text[k])) return !IsCased(text[k]);
  }
  return true;
}

std::u32string PythonLower(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == 0x130) {  // The one unconditional multi-character lower-case.
      out.push_back(U'i');
      out.push_back(0x307);
    } else if (c == 0x3A3) {
      out.push_back(FinalSigma(text, i) ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

// CLIP's basic_clean strips str.isspace() characters from both ends, then
// whitespace_clean turns each run of the regex module's \s (Unicode
// White_Space, which lacks U+001C..U+001F) into one space and strips again.
std::u32string CollapseWhitespace(const std::u32string& text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && IsPythonSpace(text[begin])) ++begin;
  while (end > begin && IsPythonSpace(text[end - 1])) --end;
  std::u32string out;
  out.reserve(end - begin);
  bool pending_space = false;
  for (size_t i = begin; i < end; ++i) {
    const char32_t c = text[i];
    if (IsRegexSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(U' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// Case-insensitive match of an ASCII literal at text[i] under the regex
// module's simple case folding; after lower-casing only 'ſ' (U+017F, folds to
// 's') can stand for a pattern letter without being it.
bool MatchesLiteral(const std::u32string& text, size_t i, const char* literal) {
  for (; *literal; ++literal, ++i) {
    if (i >= text.size()) return false;
    const char32_t c = text[i];
    const char32_t want = static_cast<unsigned char>(*literal);
    if (c == want) continue;
    if (want == U's' && c == 0x17F) continue;
    if (want >= U'a' && want <= U'z' && c == want - 32) continue;
    if (want == U'k' && c == 0x212A) continue;  // Kelvin sign.
    return false;
  }
  return true;
}

struct ByteTables {
  std::array<uint8_t, 256> order;
  std::array<std::string, 256> symbol;
};

const ByteTables& GetByteTables() {
  static const ByteTables* tables = [] {
    auto* t = new ByteTables();
    bool printable[256] = {};
    size_t n = 0;
    auto add_range = [&](int lo, int hi) {
      for (int b = lo; b <= hi; ++b) {
        printable[b] = true;
        t->order[n++] = static_cast<uint8_t>(b);
        t->symbol[b].clear();
        AppendUtf8(static_cast<char32_t>(b), &t->symbol[b]);
      }
    };
    add_range('!', '~');
    add_range(0xA1, 0xAC);
    add_range(0xAE, 0xFF);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      if (printable[b]) continue;
      t->order[n++] = static_cast<uint8_t>(b);
      t->symbol[b].clear();
      AppendUtf8(next++, &t->symbol[b]);
    }
    return t;
  }();
  return *tables;
}

}  // namespace

bool IsPythonSpace(char32_t c) { return (c >= 0x1C && c <= 0x1F) || IsRegexSpace(c); }

bool IsRegexSpace(char32_t c) {
  if ((c >= 0x9 && c <= 0xD) || c == 0x20) return true;
  if (c == 0x85 || c == 0xA0 || c == 0x1680) return true;
  if (c >= 0x2000 && c <= 0x200A) return true;
  return c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

absl::StatusOr<std::u32string> DecodeUtf8(absl::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = s[i];
    size_t len = 0;
    char32_t c = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    } else if ((b0 & 0xE0) == 0xC0) {
      len = 2, c = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3, c = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4, c = b0 & 0x07, min = 0x10000;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) ok = false;
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    if (ok && (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))) ok = false;
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("text is not valid UTF-8 (bad sequence at byte offset ", i, ")"));
    }
    out.push_back(c);
    i += len;
  }
  return out;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string EncodeUtf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendUtf8(c, &out);
  return out;
}

absl::StatusOr<std::u32string> CleanText(absl::string_view text) {
  if (text.size() > kMaxTextBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("text is ", text.size(), " bytes; the limit is ", kMaxTextBytes));
  }
  // Validate first so the error names the offset of a bad sequence.
  auto decoded = DecodeUtf8(text);
  if (!decoded.ok()) return decoded.status();
  // CLIP's basic_clean: ftfy.fix_text (which ends in NFC), then
  // html.unescape twice; whitespace_clean and lower() follow.
  std::u32string unescaped = HtmlUnescape(HtmlUnescape(ftfy::FixText(*decoded)));
  return PythonLower(CollapseWhitespace(unescaped));
}

std::vector<std::string> PreTokenize(const std::u32string& text) {
  static constexpr const char* kContractions[] = {"s", "t", "re", "ve", "m", "ll", "d"};
  std::vector<std::string> pieces;
  const size_t n = text.size();
  size_t i = 0;
  auto emit = [&](size_t begin, size_t end) {
    std::string piece;
    for (size_t k = begin; k < end; ++k) AppendUtf8(text[k], &piece);
    pieces.push_back(std::move(piece));
  };
  while (i < n) {
    const char32_t c = text[i];
    if (c == U'<') {
      if (MatchesLiteral(text, i, kStartOfText)) {
        emit(i, i + sizeof(kStartOfText) - 1);
        i += sizeof(kStartOfText) - 1;
        continue;
      }
      if (MatchesLiteral(text, i, kEndOfText)) {
        emit(i, i + sizeof(kEndOfText) - 1);
        i += sizeof(kEndOfText) - 1;
        continue;
      }
    }
    if (c == U'\'') {
      bool matched = false;
      for (const char* suffix : kContractions) {
        if (MatchesLiteral(text, i + 1, suffix)) {
          const size_t len = 1 + std::char_traits<char>::length(suffix);
          emit(i, i + len);
          i += len;
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    if (IsLetter(c)) {
      size_t end = i + 1;
      while (end < n && IsLetter(text[end])) ++end;
      emit(i, end);
      i = end;
    } else if (IsNumber(c)) {
      emit(i, i + 1);
      ++i;
    } else if (IsRegexSpace(c) || c == 0x345) {
      // U+0345 folds to a Greek letter, so under IGNORECASE it fits neither
      // [\p{L}] nor the negated class in the regex module; CLIP drops it.
      ++i;
    } else {
      size_t end = i + 1;
      while (end < n && !IsRegexSpace(text[end]) && !IsLetter(text[end]) && !IsNumber(text[end]) &&
             text[end] != 0x345) {
        ++end;
      }
      emit(i, end);
      i = end;
    }
  }
  return pieces;
}

const std::array<uint8_t, 256>& ByteSymbolOrder() { return GetByteTables().order; }

const std::string& ByteSymbol(uint8_t byte) { return GetByteTables().symbol[byte]; }

}  // namespace provp::text
