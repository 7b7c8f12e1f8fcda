// CUDA memory statistics. PROVP_WITH_CUDA is defined (for this file only)
// when the LibTorch that CMake found has c10_cuda; the CPU build compiles
// the fallback. The allocator call is the one bench/train already runs on
// the GPU host.
#include "core/clip/device_memory.h"

#include <torch/cuda.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/util/torch_status.h"

#ifdef PROVP_WITH_CUDA
#include <array>
#include <mutex>

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#include <torch/torch.h>
#endif

namespace provp::clip {
namespace {

absl::StatusOr<int> ParseCudaIndex(const std::string& device) {
  if (device == "cuda") return 0;
  int index = -1;
  if (device.rfind("cuda:", 0) != 0 || !absl::SimpleAtoi(device.substr(5), &index) || index < 0 ||
      index > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device memory: \"", device, "\" is not a CUDA device (\"cuda\" or \"cuda:N\")"));
  }
  return index;
}

#ifdef PROVP_WITH_CUDA
// The device's size does not change: ask the driver once per device.
absl::StatusOr<int64_t> TotalBytes(int index) {
  static std::mutex mu;
  static std::array<int64_t, 64> cached{};
  if (index >= static_cast<int>(cached.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("device memory: cuda:", index, " out of range"));
  }
  std::lock_guard<std::mutex> lock(mu);
  if (cached[index] == 0) {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(index));
    size_t free_bytes = 0, total_bytes = 0;
    const cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (err != cudaSuccess) {
      return absl::InternalError(absl::StrCat("device memory: cudaMemGetInfo on cuda:", index, ": ",
                                              cudaGetErrorString(err)));
    }
    cached[index] = static_cast<int64_t>(total_bytes);
  }
  return cached[index];
}
#endif

}  // namespace

absl::StatusOr<DeviceMemoryStats> QueryDeviceMemory(const std::string& device) {
  absl::StatusOr<int> index = ParseCudaIndex(device);
  if (!index.ok()) return index.status();
#ifdef PROVP_WITH_CUDA
  return util::TorchCall("device memory", [&]() -> absl::StatusOr<DeviceMemoryStats> {
    if (!torch::cuda::is_available() || *index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::FailedPreconditionError(absl::StrCat("device memory: no CUDA device ", device));
    }
    // The caching allocator is set up lazily with the first CUDA tensor, and
    // getDeviceStats refuses a device it has not set up; an empty tensor
    // triggers that set-up without allocating.
    (void)torch::empty({0}, torch::TensorOptions().device(torch::kCUDA, *index));
    DeviceMemoryStats out;
    out.device_index = *index;
    // Index 0 of each StatArray is the aggregate over small and large pools
    // (StatType::AGGREGATE in every LibTorch 1.x/2.x).
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(*index));
    out.allocated_bytes = stats.allocated_bytes[0].current;
    out.reserved_bytes = stats.reserved_bytes[0].current;
    absl::StatusOr<int64_t> total = TotalBytes(*index);
    if (!total.ok()) return total.status();
    out.total_bytes = *total;
    return out;
  });
#else
  return absl::FailedPreconditionError(
      absl::StrCat("device memory: this build's LibTorch has no CUDA (asked for ", device, ")"));
#endif
}

}  // namespace provp::clip
