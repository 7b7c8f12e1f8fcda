// Zero-shot evaluation of a CLIP model on in-memory labelled rasters: class
// text features from one template, cosine similarity, top-1 accuracy. Used
// to report the built-in model's quality right after pretraining and in its
// tests, without writing and decoding image files.
// Not thread-safe for one model (runs forwards on it).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/builtin/demo_datasets.h"
#include "core/clip/clip_model.h"
#include "core/text/tokenizer.h"

namespace provp::builtin {

// Top-1 accuracy in [0, 1] of zero-shot classification of `items` among
// `class_names`, each filled into `text_template` ("{}" is replaced, "_"
// becomes a space). INVALID_ARGUMENT for empty inputs, labels outside the
// class list or images of the wrong size.
absl::StatusOr<double> ZeroShotAccuracy(clip::ClipModel& model, const text::Tokenizer& tokenizer,
                                        const std::vector<std::string>& class_names,
                                        const std::vector<LabeledRaster>& items,
                                        const std::string& text_template = "a photo of a {}.");

}  // namespace provp::builtin
