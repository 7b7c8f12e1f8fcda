// Keeps freed host memory inside the process instead of handing it back to
// the kernel. A CPU forward allocates and frees the same large temporaries
// (attention scores, MLP activations: megabytes each) every layer; glibc
// returns such blocks to the kernel (munmap above M_MMAP_THRESHOLD, heap
// trimming above M_TRIM_THRESHOLD) and the next layer page-faults them back
// in, zero-filled. On 2 threads those faults serialise on the process's
// memory-map lock: that was the kernel time, and most of the missing
// two-thread speed-up, of provp's CPU forward (bench/cpu, docs/benchmarks.md).
// The cost: the process keeps its peak host memory mapped. Header-only.
#pragma once

#include <malloc.h>

#include <cstdlib>

namespace provp::util {

// Call once, early, before large allocations. Returns false when glibc
// refused a setting (another C library, or a limit), true otherwise.
inline bool KeepFreedHostMemory() {
  // glibc caps the mmap threshold (32 MiB on 64-bit builds of some
  // versions); try high, then the cap. Larger blocks stay mmapped.
  bool ok = mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 || mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;
  return ok;
}

// Hands free memory the allocator holds back to the kernel (glibc's
// malloc_trim: the heap's top and the free pages between live blocks, in
// every arena). The counterpart of KeepFreedHostMemory for a long-running
// process: call it now and then, off the hot path. Returns whether any
// memory was released.
inline bool ReturnFreedHostMemory() { return malloc_trim(0) == 1; }

// Caps glibc's malloc arenas. glibc gives threads that contend their own
// arena, up to eight per core; with freed memory kept (above) each arena
// keeps its own peak, and a server whose threads come and go (RPC threads,
// StreamClassify workers, the preprocessing pool) spreads its allocations
// over ever more arenas as it ages: slow RSS growth under steady traffic
// (the soak, docs/benchmarks.md). An explicit MALLOC_ARENA_MAX in the
// environment wins. Call once, first thing in main().
inline bool CapMallocArenas(int arenas) {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr || arenas <= 0) return true;
  return mallopt(M_ARENA_MAX, arenas) == 1;
}

}  // namespace provp::util
