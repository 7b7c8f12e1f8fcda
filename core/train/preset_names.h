// Deprecated: the preset names and IsPresetName live in hyperparameters.h
// (torch-free, with the recipes themselves). This list remains only until
// the server reads hyperparameters.h directly; train_config.cc checks at
// compile time that it names exactly kPresets.
#pragma once

#include <string_view>

#include "core/train/hyperparameters.h"

namespace provp::train {

inline constexpr std::string_view kPresetNames[] = {
    "few_shot_1",        "few_shot_1_no_ref", "few_shot_2",  "few_shot_2_no_ref", "few_shot_4",
    "few_shot_4_no_ref", "few_shot_8",        "few_shot_16", "base_to_novel",     "imagenet",
};

}  // namespace provp::train
