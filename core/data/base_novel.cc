// Base/novel class split; see base_novel.h.
#include "core/data/base_novel.h"

#include <set>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"

namespace provp::data {

absl::StatusOr<ClassSubset> ParseClassSubset(absl::string_view text) {
  if (text == "all") return ClassSubset::kAll;
  if (text == "base") return ClassSubset::kBase;
  if (text == "novel" || text == "new") return ClassSubset::kNovel;
  return absl::InvalidArgumentError(
      absl::StrCat("class subset must be all, base or novel, got '", text, "'"));
}

absl::string_view ClassSubsetName(ClassSubset subset) {
  switch (subset) {
    case ClassSubset::kAll:
      return "all";
    case ClassSubset::kBase:
      return "base";
    case ClassSubset::kNovel:
      return "novel";
  }
  return "unknown";
}

int NumBaseClasses(int num_classes) { return (num_classes + 1) / 2; }

namespace {

// The part of `dataset` with `labels` (sorted), relabelled 0..k-1.
Dataset Subset(const Dataset& dataset, const std::vector<int>& labels) {
  Dataset out;
  out.name = dataset.name;
  out.image_root = dataset.image_root;
  std::unordered_map<int, int> relabel;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int label = labels[i];
    relabel[label] = static_cast<int>(i);
    out.class_names.push_back(label >= 0 && label < dataset.num_classes()
                                  ? dataset.class_names[static_cast<size_t>(label)]
                                  : absl::StrCat("class_", label));
  }
  for (Split split : {Split::kTrain, Split::kVal, Split::kTest}) {
    std::vector<Item>& dst = out.mutable_items(split);
    for (const Item& item : dataset.items(split)) {
      auto it = relabel.find(item.label);
      if (it != relabel.end()) dst.push_back(Item{item.path, it->second});
    }
  }
  return out;
}

// The reference takes the label set from train only.
absl::StatusOr<std::vector<int>> TrainLabels(const Dataset& dataset) {
  std::set<int> present;
  for (const Item& item : dataset.train) present.insert(item.label);
  if (present.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset ", dataset.name, ": cannot split base/novel: train is empty"));
  }
  return std::vector<int>(present.begin(), present.end());
}

}  // namespace

absl::StatusOr<std::vector<int>> ProtocolNovelLabels(const Dataset& dataset) {
  absl::StatusOr<std::vector<int>> labels = TrainLabels(dataset);
  if (!labels.ok()) return labels.status();
  const size_t cut = static_cast<size_t>(NumBaseClasses(static_cast<int>(labels->size())));
  if (cut == labels->size()) {
    return absl::InvalidArgumentError(absl::StrCat("dataset ", dataset.name, ": ", labels->size(),
                                                   " class(es) leave no novel classes"));
  }
  return std::vector<int>(labels->begin() + static_cast<std::ptrdiff_t>(cut), labels->end());
}

absl::StatusOr<BaseNovelSplit> SplitBaseNovel(const Dataset& dataset,
                                              const std::vector<int>& novel_labels) {
  absl::StatusOr<std::vector<int>> present = TrainLabels(dataset);
  if (!present.ok()) return present.status();
  std::set<int> novel;
  for (int label : novel_labels) {
    if (label < 0 || label >= dataset.num_classes()) {
      return absl::InvalidArgumentError(absl::StrCat("dataset ", dataset.name, ": novel label ",
                                                     label, " is not in [0, ",
                                                     dataset.num_classes(), ")"));
    }
    if (!novel.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset ", dataset.name, ": novel label ", label, " is named twice"));
    }
  }
  BaseNovelSplit out;
  for (int label : *present) {
    if (!novel.count(label)) out.base_labels.push_back(label);
  }
  if (out.base_labels.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset ", dataset.name, ": every class with training images is novel; nothing to train"));
  }
  out.novel_labels.assign(novel.begin(), novel.end());
  out.base = Subset(dataset, out.base_labels);
  out.novel = Subset(dataset, out.novel_labels);
  return out;
}

absl::StatusOr<Dataset> SubsampleClasses(const Dataset& dataset, ClassSubset subset) {
  if (subset == ClassSubset::kAll) return dataset;
  absl::StatusOr<std::vector<int>> novel = ProtocolNovelLabels(dataset);
  if (!novel.ok()) return novel.status();
  absl::StatusOr<BaseNovelSplit> split = SplitBaseNovel(dataset, *novel);
  if (!split.ok()) return split.status();
  return subset == ClassSubset::kBase ? std::move(split->base) : std::move(split->novel);
}

}  // namespace provp::data
