// The one home of the tuning-job state sets: which states are terminal and
// which are active (may still run and publish a prompt set). The store's
// state column holds TuningJob::State_Name. Header-only and proto-only, so
// the CLI (client/) reads the same definition. Pure.
#pragma once

#include <string>
#include <vector>

#include "provp/v1/tuning.pb.h"

namespace provp::server {

// SUCCEEDED, FAILED, CANCELLED: the job will not change again.
inline bool IsTerminal(v1::TuningJob::State state) {
  return state == v1::TuningJob::SUCCEEDED || state == v1::TuningJob::FAILED ||
         state == v1::TuningJob::CANCELLED;
}

// QUEUED, RUNNING, CANCELLING as store state names.
inline const std::vector<std::string>& ActiveJobStateNames() {
  static const std::vector<std::string>* const names =
      new std::vector<std::string>{v1::TuningJob::State_Name(v1::TuningJob::QUEUED),
                                   v1::TuningJob::State_Name(v1::TuningJob::RUNNING),
                                   v1::TuningJob::State_Name(v1::TuningJob::CANCELLING)};
  return *names;
}

inline std::string StateName(v1::TuningJob::State state) {
  return v1::TuningJob::State_Name(state);
}

}  // namespace provp::server
