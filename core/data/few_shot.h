// Few-shot subsets of a Dataset, drawn exactly as CoOp/Dassl draw them
// (generate_fewshot_dataset after random.seed(seed)), or read from an
// explicit list so a published split is reproduced file for file.
// Thread-safe: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "core/data/dataset.h"

namespace provp::data {

struct FewShotOptions {
  // Images per class (K >= 1).
  int shots = 16;
  // Python random seed (the protocol uses 1, 2, 3).
  int64_t seed = 1;
  // Also sample val with min(K, 4) shots after train, from the same random
  // stream (CoOp). When false, val is left as loaded.
  bool sample_val = true;
  // A class with fewer than K training images keeps all of them (CoOp);
  // with this set it is an error instead.
  bool error_if_fewer = false;
};

// A class that had fewer images than requested.
struct ShortClass {
  Split split = Split::kTrain;
  int label = 0;
  std::string class_name;
  int available = 0;
  int requested = 0;
};

struct FewShotResult {
  // Same classes and test split; train (and val) reduced.
  Dataset dataset;
  // Classes that kept all their images because they had fewer than asked.
  std::vector<ShortClass> short_classes;
};

// Per class, in order of first appearance in the split, draws
// random.sample(items, K) (classes with fewer than K keep all and draw
// nothing, as in the reference); items come out grouped by class in that
// order. FAILED_PRECONDITION "fewer images than shots" naming the class
// when options.error_if_fewer and a class is short; INVALID_ARGUMENT for
// shots < 1.
absl::StatusOr<FewShotResult> SampleFewShot(const Dataset& dataset, const FewShotOptions& options);

// Keeps exactly the train and val images listed in a JSON file
//   {"train": ["rel/path.jpg", ...], "val": [...]}
// (entries may also be split_zhou-style [path, label, class name] lists;
// only the path is used). Paths are relative to dataset.image_root (or
// absolute) and must name images of that split; the list order is kept.
// A missing "val" key leaves val as loaded. Errors name the file and entry.
absl::StatusOr<Dataset> ApplyFewShotList(const Dataset& dataset, const std::string& list_path);

// One line per short class, e.g. "train: class 'cat' (label 3) has 2 images,
// fewer than 16 shots", for logs and reports.
std::string DescribeShortClasses(const std::vector<ShortClass>& short_classes);

}  // namespace provp::data
