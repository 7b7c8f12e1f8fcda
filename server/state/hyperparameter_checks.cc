// Implementation of hyperparameter_checks.h.
#include "server/state/hyperparameter_checks.h"

#include <cmath>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/train/preset_names.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"

namespace provp::server {

absl::Status ValidateHyperparameters(const v1::Hyperparameters& hp, int64_t max_shots) {
  if (hp.shots() <= 0) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.shots must be >= 1",
                           "tuning_job.hyperparameters.shots");
  }
  if (hp.shots() > max_shots) {
    return InvalidArgument(
        "NOT_ENOUGH_SHOTS",
        absl::StrCat("hyperparameters.shots is ", hp.shots(), " but the dataset has only ",
                     max_shots, " training images for some base class"),
        "tuning_job.hyperparameters.shots");
  }
  auto range = [](int64_t v, int64_t hi, const char* field) -> absl::Status {
    if (v < 0 || v > hi) {
      return InvalidArgument("INVALID_HYPERPARAMETER",
                             absl::StrCat("hyperparameters.", field, " must be in [0, ", hi, "]"),
                             absl::StrCat("tuning_job.hyperparameters.", field));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(range(hp.epochs(), 1000, "epochs"));
  RETURN_IF_ERROR(range(hp.batch_size(), 4096, "batch_size"));
  RETURN_IF_ERROR(range(hp.num_prompts(), 1024, "num_prompts"));
  if (!std::isfinite(hp.learning_rate()) || hp.learning_rate() < 0 || hp.learning_rate() > 100) {
    return InvalidArgument("INVALID_HYPERPARAMETER",
                           "hyperparameters.learning_rate must be in [0, 100]",
                           "tuning_job.hyperparameters.learning_rate");
  }
  static const std::set<std::string> kVariants = {"", "provp_ref", "provp", "vpt_deep",
                                                  "vpt_shallow"};
  if (!kVariants.count(hp.variant())) {
    return InvalidArgument("INVALID_HYPERPARAMETER",
                           "hyperparameters.variant must be provp_ref, provp, vpt_deep or "
                           "vpt_shallow",
                           "tuning_job.hyperparameters.variant");
  }
  // Checked here, not when the job runs: an unknown preset would otherwise
  // be accepted and the job would fail minutes later.
  if (!hp.preset().empty() && !train::IsPresetName(hp.preset())) {
    std::vector<std::string> names(std::begin(train::kPresetNames), std::end(train::kPresetNames));
    return InvalidArgument(
        "INVALID_HYPERPARAMETER",
        absl::StrCat("hyperparameters.preset '", hp.preset(),
                     "' is not a preset (expected one of: ", absl::StrJoin(names, ", "), ")"),
        "tuning_job.hyperparameters.preset");
  }
  if (hp.has_alpha() && (!std::isfinite(hp.alpha()) || hp.alpha() < 0 || hp.alpha() > 1)) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.alpha must be in [0, 1]",
                           "tuning_job.hyperparameters.alpha");
  }
  if (hp.has_ref_lambda() && (!std::isfinite(hp.ref_lambda()) || hp.ref_lambda() < 0)) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.ref_lambda must be >= 0",
                           "tuning_job.hyperparameters.ref_lambda");
  }
  if (hp.has_weight_decay() && (!std::isfinite(hp.weight_decay()) || hp.weight_decay() < 0)) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.weight_decay must be >= 0",
                           "tuning_job.hyperparameters.weight_decay");
  }
  if (hp.has_min_crop_scale() &&
      !(hp.min_crop_scale() > 0 && hp.min_crop_scale() <= 1)) {  // also rejects NaN
    return InvalidArgument("INVALID_HYPERPARAMETER",
                           "hyperparameters.min_crop_scale must be in (0, 1]",
                           "tuning_job.hyperparameters.min_crop_scale");
  }
  return absl::OkStatus();
}

}  // namespace provp::server
