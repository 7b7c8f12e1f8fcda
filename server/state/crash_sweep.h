// The start-up sweep of what a crash (SIGKILL, power cut) can leave in the
// data folder: upload staging folders of older versions
// (datasets/.upload-<id>-<hex>/), prompt-set import staging files
// (prompt_sets/.import-<hex>) and the
// temporary files of atomic writes (<name>.provp-tmp-<pid>-<hex>, anywhere:
// manifests, images, checkpoints, job results, prompt sets). None of them is
// referenced by a record, so removing them restores the folder to what the
// API says it holds. With a store shared by several replicas, another
// replica may be writing such a file right now: then only entries older
// than `min_age` go. The file store's own leftovers (tmp/, trash/) are
// handled when it is opened (store::SharedDirOptions), and files stored but
// never recorded by FileRefs::Sweep. Not thread-safe against writers of the
// same folder; run it before serving.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/util/env.h"

namespace provp::server {

struct CrashSweepResult {
  // Paths removed (relative to the data folder), for the start-up log.
  std::vector<std::string> removed;
  // Their total size in bytes.
  uint64_t bytes = 0;
  // Paths that could not be removed, with the reason.
  std::vector<std::string> failed;
};

// Sweeps `data_dir` (see above). `now` is the clock for `min_age`.
CrashSweepResult SweepCrashLeftovers(const std::string& data_dir, absl::Duration min_age,
                                     absl::Time now, util::Env* env = util::Env::Default());

}  // namespace provp::server
