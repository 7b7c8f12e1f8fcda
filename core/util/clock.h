// Where the server's notion of "now" comes from. Code that stamps records or
// measures elapsed time takes a Clock* at construction, so tests can drive
// time with a fake clock (tests/testing/fake_clock.h) instead of sleeping.
// Waiting (condition variables, deadlines of blocked calls) stays on real
// time. Implementations are thread-safe.
#pragma once

#include "absl/time/time.h"

namespace provp::util {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // The process-wide real clock (absl::Now); never null, never destroyed.
  static const Clock* Real();
};

}  // namespace provp::util
