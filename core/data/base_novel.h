// The base-to-novel class split of the CoCoOp protocol
// (OxfordPets.subsample_classes): the sorted labels present in train are cut
// at ceil(n/2); the first part is "base", the rest "novel", each relabelled
// 0..k-1 in sorted order, with train/val/test filtered the same way. Few-shot
// sampling happens before this split (on all classes).
// Thread-safe: pure functions.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "core/data/dataset.h"

namespace provp::data {

enum class ClassSubset { kAll, kBase, kNovel };

// "all", "base", "novel" ("new", the reference's word, is accepted too).
absl::StatusOr<ClassSubset> ParseClassSubset(absl::string_view text);
absl::string_view ClassSubsetName(ClassSubset subset);

// Number of base classes for n classes: ceil(n / 2).
int NumBaseClasses(int num_classes);

// The subset's classes and items, relabelled from 0. kAll returns the
// dataset unchanged. INVALID_ARGUMENT when train has no items, or when the
// novel subset would be empty (a single class).
absl::StatusOr<Dataset> SubsampleClasses(const Dataset& dataset, ClassSubset subset);

}  // namespace provp::data
