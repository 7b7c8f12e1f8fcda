// OpenBLAS picks its kernels from the CPU's family and model number, and a
// model newer than the OpenBLAS build knows gets its generic "Prescott"
// (SSE3) kernels even when the CPU has AVX-512: Debian 12's OpenBLAS 0.3.21
// on an Emerald Rapids VM (family 6, model 207) does so, and the CPU
// forward then runs about 1.45x slower (docs/benchmarks.md). OpenBLAS reads
// OPENBLAS_CORETYPE only while it loads, before main(), so the remedy is to
// run the program again with it set: ReexecWithBestBlasKernels does that,
// once, when OpenBLAS is the BLAS, it chose a generic kernel, the CPU has
// AVX2/AVX-512, and neither OPENBLAS_CORETYPE nor PROVP_KEEP_OPENBLAS is
// set (tests that compare figures across processes set the latter). Nothing
// changes under MKL, another BLAS, or a CPU OpenBLAS knows.
#pragma once

#include <string>

namespace provp::util {

// The kernel set OpenBLAS runs with ("SkylakeX", "Haswell", "Prescott", ...),
// or "" when the BLAS in this process is not OpenBLAS.
std::string OpenBlasCoreName();

// The OpenBLAS kernel set this CPU's features allow ("SkylakeX" with
// AVX-512 F/BW/DQ/VL/CD, "Haswell" with AVX2 and FMA), or "" for neither
// (or not x86-64).
std::string BestOpenBlasCoreForCpu();

// Call first thing in main(), before any thread starts: when OpenBLAS
// fell back to a generic kernel set that the CPU can do better than,
// re-executes /proc/self/exe with the same arguments and
// OPENBLAS_CORETYPE=<best>, and does not return; otherwise returns. With
// `announce_as` (the program's name) it says so on stderr first; a server
// passes nullptr and reports BlasSummary() in its start-up summary.
void ReexecWithBestBlasKernels(char** argv, const char* announce_as);

// One line for a start-up summary: the BLAS kernels in use and, after a
// re-execution, which ones OpenBLAS had chosen on its own.
std::string BlasSummary();

}  // namespace provp::util
