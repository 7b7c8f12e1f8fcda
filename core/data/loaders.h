// Loaders that turn datasets on disk into a Dataset (dataset.h):
//  - the CoOp/Dassl layout of the 11 few-shot benchmarks, chosen by name
//    (split_zhou_<Name>.json files, ImageNet's classnames.txt + folders,
//    FGVCAircraft's images_variant_*.txt + variants.txt), and a generic mode
//    for any folder holding a split_zhou_*.json;
//  - a plain class-per-folder layout (root/<class>/*.jpg, optional
//    train/val/test subfolders);
//  - a JSON manifest {class_names, items: [{path, label, split}]}.
// Every error names the file and the field or line at fault. Files are read
// with a size cap; nothing is allocated from sizes a file claims.
// Thread-safe: functions only read the files they are given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "core/data/dataset.h"

namespace provp::data {

struct LoadOptions {
  // Check at load time that every listed image exists, so a missing file
  // fails here with its name instead of in the middle of training.
  bool check_files = true;
  // Generic split_zhou mode only: the folder that the JSON's relative
  // paths are resolved against. Empty: the folder holding the JSON.
  std::string image_root;
  // Largest split/manifest/class-list file accepted.
  uint64_t max_file_bytes = uint64_t{512} << 20;
};

// Where the CoOp layout keeps one benchmark, relative to the $DATA root.
struct CoopLayout {
  std::string name;          // DATASET.NAME, e.g. "OxfordPets"
  std::string folder;        // e.g. "oxford_pets"
  std::string image_subdir;  // e.g. "images"; empty: the folder itself
  std::string split_file;    // e.g. "split_zhou_OxfordPets.json"; empty: own format
};

// The 11 benchmarks of METHOD.md section 6, in table order.
const std::vector<CoopLayout>& CoopLayouts();

// Loads a benchmark in the CoOp layout. `root` is either the $DATA folder
// (holding oxford_pets/, imagenet/, ...) or the benchmark's own folder.
// A name outside the table (or an empty name) selects the generic mode:
// `root`/split_zhou_<name>.json (with an empty name: the only
// split_zhou_*.json in `root`, whose <name> becomes the dataset name).
// Class names come from the training entries' third field, ordered by label.
absl::StatusOr<Dataset> LoadCoopDataset(const std::string& root, const std::string& name,
                                        const LoadOptions& options = {});

// Reads one split_zhou JSON ({"train"|"val"|"test": [[path, label, name]]})
// with image paths relative to `image_root`.
absl::StatusOr<Dataset> LoadSplitJson(const std::string& split_path, const std::string& image_root,
                                      const std::string& name, const LoadOptions& options = {});

// CoOp's ImageNet: `dataset_dir`/classnames.txt ("<wnid> <name>" lines) and
// images/{train,val}/<wnid>/*. Labels follow the sorted train folders. As in
// CoOp, val is the test split; the Dataset's val stays empty because this
// project never selects models on test images.
absl::StatusOr<Dataset> LoadImageNet(const std::string& dataset_dir,
                                     const LoadOptions& options = {});

// CoOp's FGVCAircraft: variants.txt (class names, one per line, label =
// line order) and images_variant_{train,val,test}.txt ("<image id> <variant>").
absl::StatusOr<Dataset> LoadFgvcAircraft(const std::string& dataset_dir,
                                         const LoadOptions& options = {});

// root/<class>/<image> with classes sorted by folder name. When root/train
// exists the classes come from it and root/val, root/test (if present) are
// the other splits; otherwise every image goes to train. Only files with an
// image extension (jpg, jpeg, png, bmp, webp, tif, tiff) are taken, sorted.
absl::StatusOr<Dataset> LoadClassFolders(const std::string& root, const std::string& name,
                                         const LoadOptions& options = {});

// A JSON manifest:
//   {"name": "...",                       (optional)
//    "image_root": "...",                 (optional, relative to the manifest)
//    "class_names": ["cat", "dog"],
//    "items": [{"path": "a.jpg", "label": 0, "split": "train"}, ...]}
// "split" is "train" (the default), "val" or "test".
// Relative paths resolve against image_root, else the manifest's folder.
absl::StatusOr<Dataset> LoadManifest(const std::string& manifest_path,
                                     const LoadOptions& options = {});

}  // namespace provp::data
