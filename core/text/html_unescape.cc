// Implementation of HtmlUnescape over Python's html.entities.html5, compiled
// in from html5_entities.inc (regenerate with core/text/gen_text_tables.py).
// Thread-safe: immutable tables only.
#include "core/text/html_unescape.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string_view>

namespace provp::text {
namespace {

struct Html5Entity {
  const char* name;  // Without the ';'.
  const char32_t* value;
  bool semicolon_form;  // "name;" is a key of html5.
  bool bare_form;       // "name" is a key too: a legacy name, ';' optional.
};

#include "core/text/html5_entities.inc"

const Html5Entity* FindEntity(std::string_view name) {
  const Html5Entity* begin = std::begin(kHtml5Entities);
  const Html5Entity* end = std::end(kHtml5Entities);
  const Html5Entity* it = std::lower_bound(
      begin, end, name,
      [](const Html5Entity& e, std::string_view n) { return std::string_view(e.name) < n; });
  if (it != end && std::string_view(it->name) == name) return it;
  return nullptr;
}

void AppendValue(const Html5Entity& e, std::u32string* out) { out->append(e.value); }

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
    // The whole match is a key: "name;" (with its ';') or a bare legacy name.
    if (const Html5Entity* e = FindEntity(name);
        e && (has_semicolon ? e->semicolon_form : e->bare_form)) {
      AppendValue(*e, out);
      return name_len + 1 + (has_semicolon ? 1 : 0);
    }
  }
  // Longest legacy name that is a proper prefix of what was matched (at least
  // two characters, as html.unescape requires); the rest stays literal.
  size_t matched_len = name_len + (has_semicolon ? 1 : 0);
  size_t longest = std::min({name.size(), matched_len - 1, kHtml5MaxBareName});
  for (size_t len = longest; len >= 2; --len) {
    const Html5Entity* e = FindEntity(std::string_view(name).substr(0, len));
    if (e && e->bare_form) {
      AppendValue(*e, out);
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

std::optional<std::u32string_view> LookupHtml5Entity(std::string_view key) {
  const bool semicolon = !key.empty() && key.back() == ';';
  if (semicolon) key.remove_suffix(1);
  const Html5Entity* e = FindEntity(key);
  if (e == nullptr || !(semicolon ? e->semicolon_form : e->bare_form)) return std::nullopt;
  return std::u32string_view(e->value);
}

size_t Html5EntityKeyCount() { return kHtml5EntityCount; }

}  // namespace provp::text
