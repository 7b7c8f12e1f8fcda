// Implementation of scrape_gauges.h.
#include "core/metrics/scrape_gauges.h"

#include <cmath>
#include <exception>

#include <prometheus/check_names.h>

#include "absl/strings/str_cat.h"

namespace provp::metrics {

absl::Status ScrapeTimeGauges::Add(absl::string_view name, absl::string_view help, Reader reader) {
  const std::string n(name);
  if (!prometheus::CheckMetricName(n)) {
    return absl::InvalidArgumentError(absl::StrCat("metric name '", name, "' is not valid"));
  }
  if (help.empty())
    return absl::InvalidArgumentError(absl::StrCat(name, ": help text is required"));
  if (help.find_first_of("\\\n") != absl::string_view::npos) {  // written unescaped
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": help text may not contain a backslash or newline"));
  }
  for (const Entry& e : entries_) {
    if (e.name == n)
      return absl::AlreadyExistsError(absl::StrCat("metric '", name, "' added twice"));
  }
  entries_.push_back({n, std::string(help), std::move(reader)});
  return absl::OkStatus();
}

std::vector<prometheus::MetricFamily> ScrapeTimeGauges::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  for (const Entry& e : entries_) {
    prometheus::MetricFamily family;
    family.name = e.name;
    family.help = e.help;
    family.type = prometheus::MetricType::Gauge;
    Series series;
    try {
      series = e.reader();
    } catch (const std::exception&) {
      series.clear();  // a failing reader drops its series for this scrape, never the process
    }
    for (const auto& [labels, value] : series) {
      prometheus::ClientMetric m;
      for (const auto& [label, v] : labels) {
        if (prometheus::CheckLabelName(label)) m.label.push_back({label, v});
      }
      m.gauge.value = value;
      family.metric.push_back(std::move(m));
    }
    out.push_back(std::move(family));
  }
  return out;
}

}  // namespace provp::metrics
