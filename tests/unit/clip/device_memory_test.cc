// QueryDeviceMemory's contract on any build: device strings are checked
// before anything else, and without a CUDA device the answer is
// FAILED_PRECONDITION, never a crash. The CUDA numbers are checked in
// tests/gpu/device_memory_gpu_test.cc.
#include "core/clip/device_memory.h"

#include <torch/cuda.h>

#include "gtest/gtest.h"

namespace provp::clip {
namespace {

TEST(DeviceMemoryTest, RejectsNonCudaDeviceStrings) {
  for (const char* device : {"cpu", "", "cuda:", "cuda:-1", "cuda:x", "cudax", "mps:0"}) {
    EXPECT_EQ(QueryDeviceMemory(device).status().code(), absl::StatusCode::kInvalidArgument)
        << device;
  }
}

TEST(DeviceMemoryTest, WithoutCudaAnswersFailedPrecondition) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA present: see the gpu suite";
  for (const char* device : {"cuda", "cuda:0", "cuda:3"}) {
    absl::StatusOr<DeviceMemoryStats> stats = QueryDeviceMemory(device);
    EXPECT_EQ(stats.status().code(), absl::StatusCode::kFailedPrecondition) << device;
  }
}

}  // namespace
}  // namespace provp::clip
