// Text exposition format 0.0.4 writer (see text_format.h).
#include "core/metrics/text_format.h"

#include <charconv>
#include <cmath>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace provp::metrics {
namespace {

absl::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Appends `{a="x",b="y"}` (plus an optional trailing `le`), or nothing when
// there are no labels at all.
void AppendLabels(const std::vector<std::pair<std::string, std::string>>& labels,
                  absl::string_view le, std::string* out) {
  if (labels.empty() && le.empty()) return;
  out->push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out->push_back(',');
    first = false;
    absl::StrAppend(out, name, "=\"", EscapeLabelValue(value), "\"");
  }
  if (!le.empty()) {
    if (!first) out->push_back(',');
    absl::StrAppend(out, "le=\"", le, "\"");
  }
  out->push_back('}');
}

void AppendSample(absl::string_view name, absl::string_view suffix,
                  const std::vector<std::pair<std::string, std::string>>& labels,
                  absl::string_view le, absl::string_view value, std::string* out) {
  absl::StrAppend(out, name, suffix);
  AppendLabels(labels, le, out);
  absl::StrAppend(out, " ", value, "\n");
}

}  // namespace

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (result.ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  return std::string(buffer, result.ptr);
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string SerializeText(const std::vector<FamilySnapshot>& families) {
  std::string out;
  for (const FamilySnapshot& family : families) {
    absl::StrAppend(&out, "# HELP ", family.name, " ", EscapeHelp(family.help), "\n");
    absl::StrAppend(&out, "# TYPE ", family.name, " ", TypeName(family.type), "\n");
    for (const MetricSnapshot& metric : family.metrics) {
      if (family.type != MetricType::kHistogram) {
        AppendSample(family.name, "", metric.labels, "", FormatDouble(metric.value), &out);
        continue;
      }
      const HistogramSnapshot& h = metric.histogram;
      for (size_t i = 0; i < h.upper_bounds.size() && i < h.cumulative_counts.size(); ++i) {
        AppendSample(family.name, "_bucket", metric.labels, FormatDouble(h.upper_bounds[i]),
                     absl::StrCat(h.cumulative_counts[i]), &out);
      }
      AppendSample(family.name, "_bucket", metric.labels, "+Inf", absl::StrCat(h.count), &out);
      AppendSample(family.name, "_sum", metric.labels, "", FormatDouble(h.sum), &out);
      AppendSample(family.name, "_count", metric.labels, "", absl::StrCat(h.count), &out);
    }
  }
  return out;
}

std::string SerializeText(const Registry& registry) { return SerializeText(registry.Collect()); }

}  // namespace provp::metrics
