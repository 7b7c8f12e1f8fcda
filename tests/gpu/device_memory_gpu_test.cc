// The CUDA side of QueryDeviceMemory (label `gpu`; skips without CUDA): a
// 64 MiB tensor shows up in `allocated`, the caching allocator keeps at
// least that much reserved, the device's size is larger still, and freeing
// the tensor brings `allocated` back down.
#include <torch/torch.h>

#include "core/clip/device_memory.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::clip {
namespace {

TEST(DeviceMemoryGpuTest, FollowsAllocations) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  constexpr int64_t kBytes = 64 << 20;
  auto before = QueryDeviceMemory("cuda:0");
  ASSERT_OK(before);
  int64_t held = 0;
  {
    torch::Tensor t = torch::empty({kBytes}, torch::dtype(torch::kUInt8).device(torch::kCUDA, 0));
    auto during = QueryDeviceMemory("cuda");
    ASSERT_OK(during);
    EXPECT_EQ(during->device_index, 0);
    EXPECT_GE(during->allocated_bytes - before->allocated_bytes, kBytes);
    EXPECT_GE(during->reserved_bytes, during->allocated_bytes);
    EXPECT_GT(during->total_bytes, during->reserved_bytes);
    held = during->allocated_bytes;
  }
  auto after = QueryDeviceMemory("cuda:0");
  ASSERT_OK(after);
  EXPECT_LE(after->allocated_bytes, held - kBytes);
  EXPECT_EQ(QueryDeviceMemory("cuda:1000").status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace provp::clip
