// LibTorch's intra-op thread count, chosen once per process. LibTorch 1.13
// defaults to its count of physical cores, which reads as 1 on some VMs with
// 2 vCPUs, and it pins OpenMP (and so OpenBLAS, which does the GEMMs) to that
// count: the second core then idles while training runs at half speed.
// Header-only; include it only from code that already links LibTorch.
#pragma once

#include <dlfcn.h>

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

// Sets the OpenMP thread count of parallel regions started by the calling
// thread only (OpenMP keeps it per thread; LibTorch's intra-op loops and the
// OpenMP build of OpenBLAS read it at each call), so one thread - a tuning
// job's - can run on fewer cores than the rest of the process.
// at::set_num_threads cannot: it also sets a process-wide count. Resolved at
// run time from whichever OpenMP runtime LibTorch loaded (Debian's libgomp,
// the PyPI wheel's bundled copy), so no second runtime is linked. Returns
// false when LibTorch runs without OpenMP.
inline bool SetThisThreadTorchThreads(int n) {
  using SetNumThreads = void (*)(int);
  static const SetNumThreads set =
      reinterpret_cast<SetNumThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set == nullptr || n <= 0) return false;
  // LibTorch sets each thread's count to the process's at the thread's first
  // parallel loop; done first here, so that it cannot undo this one later.
  at::internal::lazy_init_num_threads();
  set(n);
  return true;
}

}  // namespace provp::util
