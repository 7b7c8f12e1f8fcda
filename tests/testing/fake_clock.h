// A Clock that moves only when the test says so (util::Clock), so code that
// stamps records or throttles by time is tested without sleeping.
// Thread-safe.
#pragma once

#include <mutex>

#include "absl/time/time.h"
#include "core/util/clock.h"

namespace provp::testing {

class FakeClock final : public util::Clock {
 public:
  // Starts at a fixed, recognisable instant (2026-01-01T00:00:00Z).
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600)) : now_(start) {}

  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

}  // namespace provp::testing
