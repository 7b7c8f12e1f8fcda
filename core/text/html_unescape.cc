// Implementation of HtmlUnescape. The entity table lists the HTML 4.01 names
// with the values the HTML5 specification gives them (lang/rang differ from
// HTML 4), generated once from that standard's list. Thread-safe: immutable
// tables only.
#include "core/text/html_unescape.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string_view>

namespace provp::text {
namespace {

struct Entity {
  const char* name;
  char32_t value;
  bool legacy;  // May be written without the trailing ';'.
};

// Sorted by name (byte order) for binary search.
constexpr Entity kEntities[] = {
    {"AElig", 0xC6, true},     {"AMP", 0x26, true},        {"Aacute", 0xC1, true},
    {"Acirc", 0xC2, true},     {"Agrave", 0xC0, true},     {"Alpha", 0x391, false},
    {"Aring", 0xC5, true},     {"Atilde", 0xC3, true},     {"Auml", 0xC4, true},
    {"Beta", 0x392, false},    {"COPY", 0xA9, true},       {"Ccedil", 0xC7, true},
    {"Chi", 0x3A7, false},     {"Dagger", 0x2021, false},  {"Delta", 0x394, false},
    {"ETH", 0xD0, true},       {"Eacute", 0xC9, true},     {"Ecirc", 0xCA, true},
    {"Egrave", 0xC8, true},    {"Epsilon", 0x395, false},  {"Eta", 0x397, false},
    {"Euml", 0xCB, true},      {"GT", 0x3E, true},         {"Gamma", 0x393, false},
    {"Iacute", 0xCD, true},    {"Icirc", 0xCE, true},      {"Igrave", 0xCC, true},
    {"Iota", 0x399, false},    {"Iuml", 0xCF, true},       {"Kappa", 0x39A, false},
    {"LT", 0x3C, true},        {"Lambda", 0x39B, false},   {"Mu", 0x39C, false},
    {"Ntilde", 0xD1, true},    {"Nu", 0x39D, false},       {"OElig", 0x152, false},
    {"Oacute", 0xD3, true},    {"Ocirc", 0xD4, true},      {"Ograve", 0xD2, true},
    {"Omega", 0x3A9, false},   {"Omicron", 0x39F, false},  {"Oslash", 0xD8, true},
    {"Otilde", 0xD5, true},    {"Ouml", 0xD6, true},       {"Phi", 0x3A6, false},
    {"Pi", 0x3A0, false},      {"Prime", 0x2033, false},   {"Psi", 0x3A8, false},
    {"QUOT", 0x22, true},      {"REG", 0xAE, true},        {"Rho", 0x3A1, false},
    {"Scaron", 0x160, false},  {"Sigma", 0x3A3, false},    {"THORN", 0xDE, true},
    {"Tau", 0x3A4, false},     {"Theta", 0x398, false},    {"Uacute", 0xDA, true},
    {"Ucirc", 0xDB, true},     {"Ugrave", 0xD9, true},     {"Upsilon", 0x3A5, false},
    {"Uuml", 0xDC, true},      {"Xi", 0x39E, false},       {"Yacute", 0xDD, true},
    {"Yuml", 0x178, false},    {"Zeta", 0x396, false},     {"aacute", 0xE1, true},
    {"acirc", 0xE2, true},     {"acute", 0xB4, true},      {"aelig", 0xE6, true},
    {"agrave", 0xE0, true},    {"alefsym", 0x2135, false}, {"alpha", 0x3B1, false},
    {"amp", 0x26, true},       {"and", 0x2227, false},     {"ang", 0x2220, false},
    {"apos", 0x27, false},     {"aring", 0xE5, true},      {"asymp", 0x2248, false},
    {"atilde", 0xE3, true},    {"auml", 0xE4, true},       {"bdquo", 0x201E, false},
    {"beta", 0x3B2, false},    {"brvbar", 0xA6, true},     {"bull", 0x2022, false},
    {"cap", 0x2229, false},    {"ccedil", 0xE7, true},     {"cedil", 0xB8, true},
    {"cent", 0xA2, true},      {"chi", 0x3C7, false},      {"circ", 0x2C6, false},
    {"clubs", 0x2663, false},  {"cong", 0x2245, false},    {"copy", 0xA9, true},
    {"crarr", 0x21B5, false},  {"cup", 0x222A, false},     {"curren", 0xA4, true},
    {"dArr", 0x21D3, false},   {"dagger", 0x2020, false},  {"darr", 0x2193, false},
    {"deg", 0xB0, true},       {"delta", 0x3B4, false},    {"diams", 0x2666, false},
    {"divide", 0xF7, true},    {"eacute", 0xE9, true},     {"ecirc", 0xEA, true},
    {"egrave", 0xE8, true},    {"empty", 0x2205, false},   {"emsp", 0x2003, false},
    {"ensp", 0x2002, false},   {"epsilon", 0x3B5, false},  {"equiv", 0x2261, false},
    {"eta", 0x3B7, false},     {"eth", 0xF0, true},        {"euml", 0xEB, true},
    {"euro", 0x20AC, false},   {"exist", 0x2203, false},   {"fnof", 0x192, false},
    {"forall", 0x2200, false}, {"frac12", 0xBD, true},     {"frac14", 0xBC, true},
    {"frac34", 0xBE, true},    {"frasl", 0x2044, false},   {"gamma", 0x3B3, false},
    {"ge", 0x2265, false},     {"gt", 0x3E, true},         {"hArr", 0x21D4, false},
    {"harr", 0x2194, false},   {"hearts", 0x2665, false},  {"hellip", 0x2026, false},
    {"iacute", 0xED, true},    {"icirc", 0xEE, true},      {"iexcl", 0xA1, true},
    {"igrave", 0xEC, true},    {"image", 0x2111, false},   {"infin", 0x221E, false},
    {"int", 0x222B, false},    {"iota", 0x3B9, false},     {"iquest", 0xBF, true},
    {"isin", 0x2208, false},   {"iuml", 0xEF, true},       {"kappa", 0x3BA, false},
    {"lArr", 0x21D0, false},   {"lambda", 0x3BB, false},   {"lang", 0x27E8, false},
    {"laquo", 0xAB, true},     {"larr", 0x2190, false},    {"lceil", 0x2308, false},
    {"ldquo", 0x201C, false},  {"le", 0x2264, false},      {"lfloor", 0x230A, false},
    {"lowast", 0x2217, false}, {"loz", 0x25CA, false},     {"lrm", 0x200E, false},
    {"lsaquo", 0x2039, false}, {"lsquo", 0x2018, false},   {"lt", 0x3C, true},
    {"macr", 0xAF, true},      {"mdash", 0x2014, false},   {"micro", 0xB5, true},
    {"middot", 0xB7, true},    {"minus", 0x2212, false},   {"mu", 0x3BC, false},
    {"nabla", 0x2207, false},  {"nbsp", 0xA0, true},       {"ndash", 0x2013, false},
    {"ne", 0x2260, false},     {"ni", 0x220B, false},      {"not", 0xAC, true},
    {"notin", 0x2209, false},  {"nsub", 0x2284, false},    {"ntilde", 0xF1, true},
    {"nu", 0x3BD, false},      {"oacute", 0xF3, true},     {"ocirc", 0xF4, true},
    {"oelig", 0x153, false},   {"ograve", 0xF2, true},     {"oline", 0x203E, false},
    {"omega", 0x3C9, false},   {"omicron", 0x3BF, false},  {"oplus", 0x2295, false},
    {"or", 0x2228, false},     {"ordf", 0xAA, true},       {"ordm", 0xBA, true},
    {"oslash", 0xF8, true},    {"otilde", 0xF5, true},     {"otimes", 0x2297, false},
    {"ouml", 0xF6, true},      {"para", 0xB6, true},       {"part", 0x2202, false},
    {"permil", 0x2030, false}, {"perp", 0x22A5, false},    {"phi", 0x3C6, false},
    {"pi", 0x3C0, false},      {"piv", 0x3D6, false},      {"plusmn", 0xB1, true},
    {"pound", 0xA3, true},     {"prime", 0x2032, false},   {"prod", 0x220F, false},
    {"prop", 0x221D, false},   {"psi", 0x3C8, false},      {"quot", 0x22, true},
    {"rArr", 0x21D2, false},   {"radic", 0x221A, false},   {"rang", 0x27E9, false},
    {"raquo", 0xBB, true},     {"rarr", 0x2192, false},    {"rceil", 0x2309, false},
    {"rdquo", 0x201D, false},  {"real", 0x211C, false},    {"reg", 0xAE, true},
    {"rfloor", 0x230B, false}, {"rho", 0x3C1, false},      {"rlm", 0x200F, false},
    {"rsaquo", 0x203A, false}, {"rsquo", 0x2019, false},   {"sbquo", 0x201A, false},
    {"scaron", 0x161, false},  {"sdot", 0x22C5, false},    {"sect", 0xA7, true},
    {"shy", 0xAD, true},       {"sigma", 0x3C3, false},    {"sigmaf", 0x3C2, false},
    {"sim", 0x223C, false},    {"spades", 0x2660, false},  {"sub", 0x2282, false},
    {"sube", 0x2286, false},   {"sum", 0x2211, false},     {"sup", 0x2283, false},
    {"sup1", 0xB9, true},      {"sup2", 0xB2, true},       {"sup3", 0xB3, true},
    {"supe", 0x2287, false},   {"szlig", 0xDF, true},      {"tau", 0x3C4, false},
    {"there4", 0x2234, false}, {"theta", 0x3B8, false},    {"thetasym", 0x3D1, false},
    {"thinsp", 0x2009, false}, {"thorn", 0xFE, true},      {"tilde", 0x2DC, false},
    {"times", 0xD7, true},     {"trade", 0x2122, false},   {"uArr", 0x21D1, false},
    {"uacute", 0xFA, true},    {"uarr", 0x2191, false},    {"ucirc", 0xFB, true},
    {"ugrave", 0xF9, true},    {"uml", 0xA8, true},        {"upsih", 0x3D2, false},
    {"upsilon", 0x3C5, false}, {"uuml", 0xFC, true},       {"weierp", 0x2118, false},
    {"xi", 0x3BE, false},      {"yacute", 0xFD, true},     {"yen", 0xA5, true},
    {"yuml", 0xFF, true},      {"zeta", 0x3B6, false},     {"zwj", 0x200D, false},
    {"zwnj", 0x200C, false},
};

// The longest name in kEntities ("thetasym").
constexpr size_t kMaxNameLength = 8;

const Entity* FindEntity(std::string_view name) {
  const Entity* begin = std::begin(kEntities);
  const Entity* end = std::end(kEntities);
  const Entity* it = std::lower_bound(begin, end, name, [](const Entity& e, std::string_view n) {
    return std::string_view(e.name) < n;
  });
  if (it != end && std::string_view(it->name) == name) return it;
  return nullptr;
}

// Numeric references to C1 controls and NUL/CR get the character the HTML5
// specification substitutes (Windows-1252 for 0x80..0x9F).
struct Replacement {
  char32_t from;
  char32_t to;
};
constexpr Replacement kNumericReplacements[] = {
    {0x0, 0xFFFD},  {0xD, 0xD},     {0x80, 0x20AC}, {0x81, 0x81},   {0x82, 0x201A}, {0x83, 0x192},
    {0x84, 0x201E}, {0x85, 0x2026}, {0x86, 0x2020}, {0x87, 0x2021}, {0x88, 0x2C6},  {0x89, 0x2030},
    {0x8A, 0x160},  {0x8B, 0x2039}, {0x8C, 0x152},  {0x8D, 0x8D},   {0x8E, 0x17D},  {0x8F, 0x8F},
    {0x90, 0x90},   {0x91, 0x2018}, {0x92, 0x2019}, {0x93, 0x201C}, {0x94, 0x201D}, {0x95, 0x2022},
    {0x96, 0x2013}, {0x97, 0x2014}, {0x98, 0x2DC},  {0x99, 0x2122}, {0x9A, 0x161},  {0x9B, 0x203A},
    {0x9C, 0x153},  {0x9D, 0x9D},   {0x9E, 0x17E},  {0x9F, 0x178},
};

// Code points a numeric reference may not produce; html.unescape drops them.
bool IsForbiddenCodePoint(uint32_t c) {
  if ((c >= 0x1 && c <= 0x8) || c == 0xB || (c >= 0xE && c <= 0x1F)) return true;
  if (c >= 0x7F && c <= 0x9F) return true;
  if (c >= 0xFDD0 && c <= 0xFDEF) return true;
  return (c & 0xFFFE) == 0xFFFE;  // U+xFFFE / U+xFFFF in every plane.
}

// Appends what numeric reference `value` decodes to; `value` is saturated
// above 0x10FFFF by the caller.
void AppendNumeric(uint32_t value, std::u32string* out) {
  for (const Replacement& r : kNumericReplacements) {
    if (r.from == value) {
      out->push_back(r.to);
      return;
    }
  }
  if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
    out->push_back(0xFFFD);
    return;
  }
  if (IsForbiddenCodePoint(value)) return;
  out->push_back(static_cast<char32_t>(value));
}

bool IsDigit(char32_t c) { return c >= '0' && c <= '9'; }
int HexValue(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// Characters that end a reference name: [^\t\n\f <&#;] in Python's pattern.
bool EndsName(char32_t c) {
  return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
         c == ';';
}

// Tries to decode the reference starting at text[amp] == '&'. Returns the
// number of code points consumed (0: not a reference, '&' stays literal).
size_t DecodeReference(const std::u32string& text, size_t amp, std::u32string* out) {
  const size_t n = text.size();
  size_t i = amp + 1;
  if (i < n && text[i] == '#') {
    ++i;
    constexpr uint32_t kSaturated = 0x110000;  // Anything above 0x10FFFF.
    uint32_t value = 0;
    size_t digits = 0;
    if (i < n && (text[i] == 'x' || text[i] == 'X')) {
      ++i;
      while (i < n && HexValue(text[i]) >= 0) {
        value =
            std::min<uint32_t>(kSaturated, value * 16 + static_cast<uint32_t>(HexValue(text[i])));
        ++i;
        ++digits;
      }
    } else {
      while (i < n && IsDigit(text[i])) {
        value = std::min<uint32_t>(kSaturated, value * 10 + static_cast<uint32_t>(text[i] - '0'));
        ++i;
        ++digits;
      }
    }
    if (digits == 0) return 0;
    if (i < n && text[i] == ';') ++i;
    AppendNumeric(value, out);
    return i - amp;
  }
  // Named: up to 32 name characters, then an optional ';'.
  size_t end = i;
  while (end < n && end - i < 32 && !EndsName(text[end])) ++end;
  if (end == i) return 0;
  const bool has_semicolon = end < n && text[end] == ';';
  // Names are ASCII; a non-ASCII character can only be matched by a prefix.
  std::string name;
  for (size_t k = i; k < end && text[k] < 0x80; ++k) name.push_back(static_cast<char>(text[k]));
  const size_t name_len = end - i;
  if (name.size() == name_len) {
    if (const Entity* e = FindEntity(name); e && (has_semicolon || e->legacy)) {
      out->push_back(e->value);
      return name_len + 1 + (has_semicolon ? 1 : 0);
    }
  }
  // Longest legacy name that is a proper prefix of what was matched (at least
  // two characters, as html.unescape requires); the rest stays literal.
  size_t matched_len = name_len + (has_semicolon ? 1 : 0);
  size_t longest = std::min({name.size(), matched_len - 1, kMaxNameLength});
  for (size_t len = longest; len >= 2; --len) {
    const Entity* e = FindEntity(std::string_view(name).substr(0, len));
    if (e && e->legacy) {
      out->push_back(e->value);
      return len + 1;
    }
  }
  return 0;
}

}  // namespace

std::u32string HtmlUnescape(const std::u32string& text) {
  if (text.find(U'&') == std::u32string::npos) return text;
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '&') {
      size_t used = DecodeReference(text, i, &out);
      if (used > 0) {
        i += used;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

}  // namespace provp::text
