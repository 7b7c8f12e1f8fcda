// See blas_kernels.h. OpenBLAS is found at run time (dlsym of its
// openblas_get_corename), so this links against no BLAS and does nothing in
// processes that have another one.
#include "core/util/blas_kernels.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace provp::util {
namespace {

// Set in the re-executed process: the kernel set OpenBLAS had chosen, so the
// summary can say so and a second re-execution never happens.
constexpr char kChosenByOpenBlas[] = "PROVP_OPENBLAS_CHOSE";

// OpenBLAS's names of kernel sets older than Haswell's (no AVX2), which it
// also uses as fallbacks for CPUs it does not know.
bool IsGenericCore(const std::string& name) {
  for (const char* n : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
                        "Coppermine", "Northwood", "Banias", "Sandybridge"}) {
    if (strcasecmp(name.c_str(), n) == 0) return true;
  }
  return false;
}

}  // namespace

std::string OpenBlasCoreName() {
  using CoreName = char* (*)();
  auto fn = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (fn == nullptr) return "";
  const char* name = fn();
  return name == nullptr ? "" : name;
}

std::string BestOpenBlasCoreForCpu() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512cd")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

void ReexecWithBestBlasKernels(char** argv, const char* announce_as) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr ||
      std::getenv("PROVP_KEEP_OPENBLAS") != nullptr || std::getenv(kChosenByOpenBlas) != nullptr) {
    return;  // the user's choice, or already re-executed
  }
  const std::string current = OpenBlasCoreName();
  if (current.empty() || !IsGenericCore(current)) return;
  const std::string best = BestOpenBlasCoreForCpu();
  if (best.empty()) return;
  if (announce_as != nullptr) {
    std::fprintf(stderr,
                 "%s: OpenBLAS fell back to its %s kernels on this CPU; restarting with "
                 "OPENBLAS_CORETYPE=%s (PROVP_KEEP_OPENBLAS=1 keeps them)\n",
                 announce_as, current.c_str(), best.c_str());
  }
  setenv("OPENBLAS_CORETYPE", best.c_str(), 1);
  setenv(kChosenByOpenBlas, current.c_str(), 1);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv);
  // Still here: carry on with OpenBLAS's choice (the summary says which).
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kChosenByOpenBlas);
}

std::string BlasSummary() {
  const std::string current = OpenBlasCoreName();
  if (current.empty()) return "not OpenBLAS";
  std::string line = absl::StrCat("OpenBLAS ", current);
  if (const char* chose = std::getenv(kChosenByOpenBlas); chose != nullptr) {
    absl::StrAppend(&line, " (OPENBLAS_CORETYPE set by provp: OpenBLAS had chosen ", chose,
                    " on this CPU, which it does not know)");
  } else if (const char* set = std::getenv("OPENBLAS_CORETYPE"); set != nullptr) {
    absl::StrAppend(&line, " (OPENBLAS_CORETYPE=", set, ")");
  } else if (IsGenericCore(current) && !BestOpenBlasCoreForCpu().empty()) {
    absl::StrAppend(&line, " (generic kernels; OPENBLAS_CORETYPE=", BestOpenBlasCoreForCpu(),
                    " would run this CPU faster)");
  }
  return line;
}

}  // namespace provp::util
