// Checks of a tuning job's requested hyperparameters at creation, so a bad
// value fails the Create call instead of the job minutes later. Each failure
// is INVALID_ARGUMENT (INVALID_HYPERPARAMETER or NOT_ENOUGH_SHOTS) naming
// the field. Pure; thread-safe.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "provp/v1/tuning.pb.h"

namespace provp::server {

// `max_shots`: the fewest training images of any base class of the dataset.
absl::Status ValidateHyperparameters(const v1::Hyperparameters& hp, int64_t max_shots);

}  // namespace provp::server
