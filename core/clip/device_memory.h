// Device memory of a CUDA device as LibTorch's caching allocator sees it:
// what live tensors hold (allocated), what the allocator keeps from the
// driver (reserved, >= allocated), and the device's size. The server's
// provp_gpu_memory_* gauges read it at every scrape, so it is cheap: two
// counters under the allocator's lock, and the size read once per device.
// Built against CPU-only LibTorch it answers FAILED_PRECONDITION.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace provp::clip {

struct DeviceMemoryStats {
  int device_index = 0;
  int64_t allocated_bytes = 0;
  int64_t reserved_bytes = 0;
  int64_t total_bytes = 0;
};

// `device` is "cuda" (device 0) or "cuda:N". INVALID_ARGUMENT for any other
// device string, FAILED_PRECONDITION without CUDA (CPU LibTorch, or no such
// device), INTERNAL when CUDA reports an error. Thread-safe.
absl::StatusOr<DeviceMemoryStats> QueryDeviceMemory(const std::string& device);

}  // namespace provp::clip
