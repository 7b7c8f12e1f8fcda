// The base/novel class cut, in one place. The CoCoOp protocol
// (OxfordPets.subsample_classes) cuts the sorted labels present in train at
// ceil(n/2): the first part is "base", the rest "novel"; a caller may name
// the novel classes instead (hand-picked). Either way each part is
// relabelled 0..k-1 in sorted label order, with train/val/test filtered the
// same way. Few-shot sampling happens before this cut (on all classes).
// Thread-safe: pure functions.
#pragma once

#include <vector>

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

// The protocol's novel labels: the sorted labels present in train after the
// first ceil(n/2). INVALID_ARGUMENT when train is empty or has one class.
absl::StatusOr<std::vector<int>> ProtocolNovelLabels(const Dataset& dataset);

struct BaseNovelSplit {
  Dataset base;
  Dataset novel;
  // Original labels of each part, sorted: base_labels[i] is base label i.
  std::vector<int> base_labels;
  std::vector<int> novel_labels;
};

// Base = the labels present in train that are not in `novel_labels`; novel
// = `novel_labels`. INVALID_ARGUMENT for a label out of range, a repeated
// label, or no base class left.
absl::StatusOr<BaseNovelSplit> SplitBaseNovel(const Dataset& dataset,
                                              const std::vector<int>& novel_labels);

// The subset's classes and items, relabelled from 0 (the protocol's cut). kAll returns the
// dataset unchanged. INVALID_ARGUMENT when train has no items, or when the
// novel subset would be empty (a single class).
absl::StatusOr<Dataset> SubsampleClasses(const Dataset& dataset, ClassSubset subset);

}  // namespace provp::data
