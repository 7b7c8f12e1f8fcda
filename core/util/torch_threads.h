// LibTorch's intra-op thread count, chosen once per process. LibTorch 1.13
// defaults to its count of physical cores, which reads as 1 on some VMs with
// 2 vCPUs, and it pins OpenMP (and so OpenBLAS, which does the GEMMs) to that
// count: the second core then idles while training runs at half speed.
// Header-only; include it only from code that already links LibTorch.
#pragma once

#include <algorithm>
#include <thread>

#include <ATen/Parallel.h>

namespace provp::util {

// Sets LibTorch's intra-op threads to `requested`, or to one per logical CPU
// when `requested` <= 0. Returns the count now in effect.
inline int SetTorchThreads(int requested) {
  const int n = requested > 0 ? requested
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return at::get_num_threads();
}

}  // namespace provp::util
