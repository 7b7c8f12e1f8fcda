// The in-memory description of an image-classification dataset: ordered
// class names and {image path, label} items for train/val/test. Loaders
// (loaders.h), few-shot sampling (few_shot.h) and the base/novel split
// (base_novel.h) all produce and consume this plain value type.
// Thread-compatible: a Dataset is a value; share it read-only.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace provp::data {

// One labelled image. `path` is the path to open (image root already joined).
struct Item {
  std::string path;
  int label = 0;

  bool operator==(const Item& other) const { return label == other.label && path == other.path; }
};

enum class Split { kTrain, kVal, kTest };

// "train", "val" or "test".
absl::string_view SplitName(Split split);

struct Dataset {
  // Dataset name as given to the loader ("OxfordPets", or a free name);
  // it selects the text template (TemplateForDataset).
  std::string name;
  // Folder that relative image paths of this dataset are resolved against.
  std::string image_root;
  // Class names indexed by label (as written in the source, "_" kept).
  std::vector<std::string> class_names;
  std::vector<Item> train;
  std::vector<Item> val;
  std::vector<Item> test;

  const std::vector<Item>& items(Split split) const;
  std::vector<Item>& mutable_items(Split split);
  int num_classes() const { return static_cast<int>(class_names.size()); }
};

// Checks the invariants every consumer relies on: at least one class, no
// empty or duplicate class names, every label in [0, num_classes).
// INVALID_ARGUMENT naming the offending class/split/index otherwise.
absl::Status ValidateDataset(const Dataset& dataset);

// Number of items per label in one split (size num_classes).
std::vector<int> CountPerClass(const Dataset& dataset, Split split);

}  // namespace provp::data
