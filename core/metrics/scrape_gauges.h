// Gauges whose values are read when Prometheus scrapes, not pushed by the
// code that changes them: a small prometheus::Collectable for quantities
// owned elsewhere (LibTorch's CUDA caching allocator). Each family has a
// reader that returns its series; a reader that cannot answer reports NaN.
// Thread-safety: Add before the collectable is shared; Collect may run on
// any thread, and the readers must be safe to call from it.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace provp::metrics {

class ScrapeTimeGauges : public prometheus::Collectable {
 public:
  using Series = std::vector<std::pair<prometheus::Labels, double>>;
  using Reader = std::function<Series()>;

  // INVALID_ARGUMENT for a bad metric or label name or empty help,
  // ALREADY_EXISTS for a name added twice.
  absl::Status Add(absl::string_view name, absl::string_view help, Reader reader);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Entry {
    std::string name;
    std::string help;
    Reader reader;
  };
  std::vector<Entry> entries_;
};

}  // namespace provp::metrics
