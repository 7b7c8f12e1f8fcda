// A tuning job's hyperparameters at creation: checked and resolved with the
// core's own ResolveHyperparameters (core/train/hyperparameters.h, the one
// home of names, caps and recipes), so a bad value fails the Create call
// instead of the job minutes later, and the job stores and reports the
// values it will run with (tuning.proto: "output includes the resolved
// values"). Failures are INVALID_ARGUMENT (INVALID_HYPERPARAMETER or
// NOT_ENOUGH_SHOTS) naming the field. Pure; thread-safe.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/train/hyperparameters.h"
#include "provp/v1/tuning.pb.h"

namespace provp::server {

// The request as the core's request type (0 / unset = the preset's).
train::HyperparameterRequest RequestOf(const v1::Hyperparameters& hp, bool has_novel_classes);

// The resolved values in the proto (every field set; seed 0 becomes 1).
v1::Hyperparameters ToProto(const train::ResolvedHyperparameters& resolved,
                            const std::string& device);

// `max_shots`: the fewest training images of any base class of the dataset;
// `has_novel_classes`: the dataset holds novel classes out (the default
// preset is then base_to_novel).
absl::StatusOr<v1::Hyperparameters> ResolveJobHyperparameters(const v1::Hyperparameters& hp,
                                                              int64_t max_shots,
                                                              bool has_novel_classes);

}  // namespace provp::server
