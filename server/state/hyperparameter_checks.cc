// Implementation of hyperparameter_checks.h.
#include "server/state/hyperparameter_checks.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/state/errors.h"

namespace provp::server {

train::HyperparameterRequest RequestOf(const v1::Hyperparameters& hp, bool has_novel_classes) {
  train::HyperparameterRequest r;
  r.preset = hp.preset();
  r.variant = hp.variant();
  r.shots = hp.shots();
  r.has_novel_classes = has_novel_classes;
  if (hp.num_prompts() != 0) r.num_prompts = hp.num_prompts();
  if (hp.epochs() != 0) r.epochs = hp.epochs();
  if (hp.batch_size() != 0) r.batch_size = hp.batch_size();
  if (hp.learning_rate() != 0) r.learning_rate = hp.learning_rate();
  if (hp.has_alpha()) r.alpha = hp.alpha();
  if (hp.has_use_feature_reformation()) r.use_ref = hp.use_feature_reformation();
  if (hp.has_ref_lambda()) r.ref_lambda = hp.ref_lambda();
  if (hp.has_weight_decay()) r.weight_decay = hp.weight_decay();
  if (hp.has_min_crop_scale()) r.min_crop_scale = hp.min_crop_scale();
  r.seed = hp.seed() == 0 ? 1 : hp.seed();
  r.selection = hp.selection();
  return r;
}

v1::Hyperparameters ToProto(const train::ResolvedHyperparameters& r, const std::string& device) {
  v1::Hyperparameters hp;
  hp.set_preset(r.preset);
  hp.set_variant(r.variant);
  hp.set_shots(static_cast<int32_t>(r.shots));
  hp.set_num_prompts(static_cast<int32_t>(r.num_prompts));
  hp.set_epochs(static_cast<int32_t>(r.epochs));
  hp.set_learning_rate(r.learning_rate);
  hp.set_batch_size(static_cast<int32_t>(r.batch_size));
  hp.set_seed(r.seed);
  hp.set_use_feature_reformation(r.use_ref);
  hp.set_alpha(r.alpha);
  hp.set_ref_lambda(r.ref_lambda);
  hp.set_weight_decay(r.weight_decay);
  hp.set_min_crop_scale(r.min_crop_scale);
  hp.set_selection(r.selection);
  hp.set_device(device);
  return hp;
}

absl::StatusOr<v1::Hyperparameters> ResolveJobHyperparameters(const v1::Hyperparameters& hp,
                                                              int64_t max_shots,
                                                              bool has_novel_classes) {
  if (hp.shots() > 0 && hp.shots() > max_shots) {
    return InvalidArgument(
        "NOT_ENOUGH_SHOTS",
        absl::StrCat("hyperparameters.shots is ", hp.shots(), " but the dataset has only ",
                     max_shots, " training images for some base class"),
        "tuning_job.hyperparameters.shots");
  }
  if (hp.variant() == train::kZeroShotVariant) {
    return InvalidArgument(
        "INVALID_HYPERPARAMETER",
        absl::StrCat("hyperparameters.variant zero_shot trains nothing; a job takes one of: ",
                     train::JoinedVariantNames(/*include_zero_shot=*/false)),
        "tuning_job.hyperparameters.variant");
  }
  absl::StatusOr<train::ResolvedHyperparameters> resolved =
      train::ResolveHyperparameters(RequestOf(hp, has_novel_classes));
  if (!resolved.ok()) {
    // The core names the field in a payload; the message is its own.
    const std::string field = train::InvalidHyperparameterField(resolved.status());
    return InvalidArgument("INVALID_HYPERPARAMETER",
                           absl::StrCat("hyperparameters.", resolved.status().message()),
                           field.empty() ? std::string("tuning_job.hyperparameters")
                                         : absl::StrCat("tuning_job.hyperparameters.", field));
  }
  return ToProto(*resolved, hp.device());
}

}  // namespace provp::server
