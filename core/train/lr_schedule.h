// The ProVP learning-rate schedule (METHOD.md section 5): a constant
// warm-up rate for the first epoch(s), then cosine annealing to 0 over the
// full epoch count, stepped once per epoch (never per iteration).
// Pure functions; thread-safe.
#pragma once

#include <cstdint>

namespace provp::train {

struct LrScheduleOptions {
  // Peak rate (reference 0.1).
  double base_lr = 0.1;
  // T_max of the cosine: the configured epoch count.
  int64_t epochs = 200;
  // Constant rate of the warm-up epochs (reference 1e-5, one epoch).
  double warmup_lr = 1e-5;
  int64_t warmup_epochs = 1;
};

// Rate used during 0-based `epoch`: warmup_lr while epoch < warmup_epochs,
// then 0.5 * base_lr * (1 + cos(pi * (epoch - warmup_epochs) / epochs))
// (Dassl's ConstantWarmupScheduler with WARMUP_RECOUNT over
// CosineAnnealingLR(T_max = epochs, eta_min = 0)).
double LearningRateForEpoch(const LrScheduleOptions& options, int64_t epoch);

}  // namespace provp::train
