// LearningRateForEpoch.
#include "core/train/lr_schedule.h"

#include <cmath>

namespace provp::train {

double LearningRateForEpoch(const LrScheduleOptions& options, int64_t epoch) {
  if (epoch < options.warmup_epochs) return options.warmup_lr;
  if (options.epochs <= 0) return options.base_lr;
  const double t =
      static_cast<double>(epoch - options.warmup_epochs) / static_cast<double>(options.epochs);
  return 0.5 * options.base_lr * (1.0 + std::cos(M_PI * t));
}

}  // namespace provp::train
