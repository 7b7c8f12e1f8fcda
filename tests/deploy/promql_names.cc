// Lexical PromQL metric-name scan (see promql_names.h).
#include "tests/deploy/promql_names.h"

#include <cctype>

namespace provp::testing {
namespace {

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsIdentChar(char c) { return IsIdentStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

// Words that are never metric names even without a following '(':
// operators, modifiers, special numbers and the aggregations, whose
// `by (...)` clause may come before their parenthesis.
bool IsKeyword(const std::string& word) {
  static const std::set<std::string> kKeywords = {
      "and",  "or",       "unless",     "bool",        "offset", "by",           "without",
      "on",   "ignoring", "group_left", "group_right", "inf",    "Inf",          "nan",
      "NaN",  "atan2",    "start",      "end",         "sum",    "min",          "max",
      "avg",  "group",    "stddev",     "stdvar",      "count",  "count_values", "bottomk",
      "topk", "quantile", "limitk",     "limit_ratio"};
  return kKeywords.count(word) > 0;
}

// Drops quoted strings, {...} matchers, [...] ranges and Grafana variables,
// leaving spaces so tokens stay apart.
std::string StripNoise(absl::string_view expr) {
  std::string out;
  out.reserve(expr.size());
  size_t i = 0;
  while (i < expr.size()) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      size_t j = i + 1;
      while (j < expr.size() && expr[j] != c) j += (expr[j] == '\\' && c != '`') ? 2 : 1;
      i = j + 1;
      out.push_back(' ');
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      size_t j = i + 1;
      while (j < expr.size() && expr[j] != close) {
        if (expr[j] == '"' || expr[j] == '\'') {  // a '}' inside a label value
          const char q = expr[j];
          ++j;
          while (j < expr.size() && expr[j] != q) j += expr[j] == '\\' ? 2 : 1;
        }
        ++j;
      }
      i = j + 1;
      out.push_back(' ');
    } else if (c == '$') {
      size_t j = i + 1;
      if (j < expr.size() && expr[j] == '{') {
        while (j < expr.size() && expr[j] != '}') ++j;
        ++j;
      } else {
        while (j < expr.size() && IsIdentChar(expr[j])) ++j;
      }
      i = j;
      out.push_back(' ');
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

}  // namespace

std::set<std::string> MetricNamesInPromQL(absl::string_view expr) {
  const std::string s = StripNoise(expr);
  std::set<std::string> names;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      // Number or duration (0.99, 1e3, 5m, 0x1F): skip it whole.
      while (i < s.size() && (IsIdentChar(s[i]) || s[i] == '.')) ++i;
      continue;
    }
    if (!IsIdentStart(c)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && IsIdentChar(s[j])) ++j;
    const std::string word = s.substr(i, j - i);
    size_t k = j;
    while (k < s.size() && std::isspace(static_cast<unsigned char>(s[k]))) ++k;
    const bool call = k < s.size() && s[k] == '(';
    if (word == "by" || word == "without" || word == "on" || word == "ignoring" ||
        word == "group_left" || word == "group_right") {
      // Skip the label list that follows a grouping keyword.
      if (call) {
        while (k < s.size() && s[k] != ')') ++k;
        j = k + 1;
      }
    } else if (!call && !IsKeyword(word)) {
      names.insert(word);
    }
    i = j;
  }
  return names;
}

}  // namespace provp::testing
