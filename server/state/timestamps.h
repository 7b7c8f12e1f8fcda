// absl::Time <-> google.protobuf.Timestamp at microsecond precision (what
// the store's create-time column holds). Header-only; pure.
#pragma once

#include <cstdint>

#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace provp::server {

inline void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  int64_t us = absl::ToUnixMicros(t);
  out->set_seconds(us / 1000000);
  out->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
}

inline absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(t.seconds() * 1000000 + t.nanos() / 1000);
}

}  // namespace provp::server
