// Prometheus text exposition format 0.0.4 (what /metrics serves). Pure
// functions over snapshots; thread-safe. Output order is the snapshot order
// (Registry::Collect sorts families by name and series by label values), so
// equal registries give byte-identical text.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/metrics/metric.h"
#include "core/metrics/registry.h"

namespace provp::metrics {

// The Content-Type a scraper expects for this format.
inline constexpr absl::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

// A number Go's strconv.ParseFloat reads back exactly: shortest round-trip
// digits, and "+Inf", "-Inf", "NaN" spelled as Prometheus spells them.
std::string FormatDouble(double value);

// HELP text escaping: backslash and newline.
std::string EscapeHelp(absl::string_view help);

// Label value escaping: backslash, double quote and newline.
std::string EscapeLabelValue(absl::string_view value);

// Renders families as exposition text. Families without series still get
// their HELP and TYPE lines, so a scrape lists every registered name.
std::string SerializeText(const std::vector<FamilySnapshot>& families);

// Shorthand for SerializeText(registry.Collect()).
std::string SerializeText(const Registry& registry);

}  // namespace provp::metrics
