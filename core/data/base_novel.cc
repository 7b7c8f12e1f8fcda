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

absl::StatusOr<Dataset> SubsampleClasses(const Dataset& dataset, ClassSubset subset) {
  if (subset == ClassSubset::kAll) return dataset;
  // The reference takes the label set from train only.
  std::set<int> present;
  for (const Item& item : dataset.train) present.insert(item.label);
  if (present.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset ", dataset.name, ": cannot split base/novel: train is empty"));
  }
  const std::vector<int> labels(present.begin(), present.end());
  const size_t cut = static_cast<size_t>(NumBaseClasses(static_cast<int>(labels.size())));
  const size_t begin = subset == ClassSubset::kBase ? 0 : cut;
  const size_t end = subset == ClassSubset::kBase ? cut : labels.size();
  if (begin == end) {
    return absl::InvalidArgumentError(absl::StrCat("dataset ", dataset.name, ": ", labels.size(),
                                                   " class(es) leave no novel classes"));
  }
  Dataset out;
  out.name = dataset.name;
  out.image_root = dataset.image_root;
  std::unordered_map<int, int> relabel;
  for (size_t i = begin; i < end; ++i) {
    const int label = labels[i];
    relabel[label] = static_cast<int>(i - begin);
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

}  // namespace provp::data
