// Dataset helpers and invariant checks; see dataset.h.
#include "core/data/dataset.h"

#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace provp::data {

absl::string_view SplitName(Split split) {
  switch (split) {
    case Split::kTrain:
      return "train";
    case Split::kVal:
      return "val";
    case Split::kTest:
      return "test";
  }
  return "unknown";
}

const std::vector<Item>& Dataset::items(Split split) const {
  switch (split) {
    case Split::kTrain:
      return train;
    case Split::kVal:
      return val;
    case Split::kTest:
      break;
  }
  return test;
}

std::vector<Item>& Dataset::mutable_items(Split split) {
  switch (split) {
    case Split::kTrain:
      return train;
    case Split::kVal:
      return val;
    case Split::kTest:
      break;
  }
  return test;
}

absl::Status ValidateDataset(const Dataset& dataset) {
  const std::string where = dataset.name.empty() ? "dataset" : "dataset " + dataset.name;
  if (dataset.class_names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": empty class list"));
  }
  std::unordered_map<std::string, int> seen;
  for (int label = 0; label < dataset.num_classes(); ++label) {
    const std::string& name = dataset.class_names[static_cast<size_t>(label)];
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": class ", label, " has an empty name"));
    }
    auto [it, inserted] = seen.emplace(name, label);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": duplicate class name '", name, "' (labels ", it->second, " and ", label, ")"));
    }
  }
  for (Split split : {Split::kTrain, Split::kVal, Split::kTest}) {
    const std::vector<Item>& items = dataset.items(split);
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].label < 0 || items[i].label >= dataset.num_classes()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", SplitName(split), "[", i, "] (", items[i].path, "): label ",
                         items[i].label, " out of range [0, ", dataset.num_classes(), ")"));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<int> CountPerClass(const Dataset& dataset, Split split) {
  std::vector<int> counts(dataset.class_names.size(), 0);
  for (const Item& item : dataset.items(split)) {
    if (item.label >= 0 && item.label < dataset.num_classes()) {
      ++counts[static_cast<size_t>(item.label)];
    }
  }
  return counts;
}

}  // namespace provp::data
