// Linear-probe baseline for one few-shot draw (see the header).
#include "bench/quality/linear_probe_baseline.h"

#include "core/train/linear_probe.h"
#include "core/util/status_macros.h"

namespace provp::bench {

absl::StatusOr<double> LinearProbeTop1(clip::ClipModel& model, int64_t resolution,
                                       LabeledImages train, LabeledImages val,
                                       const torch::Tensor& test_features,
                                       const std::vector<int64_t>& test_labels, int64_t num_classes,
                                       nlohmann::json& record) {
  ASSIGN_OR_RETURN(train::EvalSet train_set,
                   train::MakeEvalSet(*train.images, *train.labels, resolution));
  ASSIGN_OR_RETURN(train::EvalSet val_set,
                   train::MakeEvalSet(*val.images, *val.labels, resolution));
  ASSIGN_OR_RETURN(torch::Tensor train_x, train::FrozenImageFeatures(model, train_set.images));
  ASSIGN_OR_RETURN(torch::Tensor val_x, train::FrozenImageFeatures(model, val_set.images));
  ASSIGN_OR_RETURN(train::LinearProbe probe,
                   train::FitLinearProbe(train_x, *train.labels, val_x, *val.labels, num_classes));
  ASSIGN_OR_RETURN(double top1, train::LinearProbeAccuracy(probe, test_features, test_labels));
  record["l2"] = probe.l2;
  record["validation_top1"] = probe.validation_top1;
  return 100.0 * top1;
}

}  // namespace provp::bench
