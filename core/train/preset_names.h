// The names of the training presets (train_config.h), in a header with no
// LibTorch, JSON or library dependency, so the torch-free server can reject
// an unknown preset when a job is created instead of when it runs.
// train_config.cc checks at compile time that its table has these names.
#pragma once

#include <string_view>

namespace provp::train {

inline constexpr std::string_view kPresetNames[] = {
    "few_shot_1",        "few_shot_1_no_ref", "few_shot_2",  "few_shot_2_no_ref", "few_shot_4",
    "few_shot_4_no_ref", "few_shot_8",        "few_shot_16", "base_to_novel",     "imagenet",
};

constexpr bool IsPresetName(std::string_view name) {
  for (std::string_view p : kPresetNames) {
    if (p == name) return true;
  }
  return false;
}

}  // namespace provp::train
