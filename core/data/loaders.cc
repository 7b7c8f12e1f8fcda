// Dataset loaders for the CoOp layout, class folders and manifests; see
// loaders.h. JSON goes through internal::ReadJsonFile (size and nesting
// caps); values are type-checked before use, so nlohmann never throws here.
#include "core/data/loaders.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

#include "core/data/json_file.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace provp::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

absl::StatusOr<json> ReadJsonFile(const std::string& path, const LoadOptions& options) {
  return internal::ReadJsonFile(path, options.max_file_bytes);
}

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path,
                                                   const LoadOptions& options) {
  absl::StatusOr<std::string> text = util::ReadFile(path, options.max_file_bytes);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("cannot read ", path, ": ", text.status().message()));
  }
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    lines.emplace_back(absl::StripAsciiWhitespace(line));
  }
  return lines;
}

bool IsDirectory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool IsRegularFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string JoinPath(const std::string& root, const std::string& relative) {
  // Same rule as Python's os.path.join: an absolute second part wins.
  if (root.empty()) return relative;
  return (fs::path(root) / relative).string();
}

// Sorted names of the non-hidden entries of `dir` that are directories
// (want_dirs) or regular files.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir, bool want_dirs) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  }
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code type_ec;
    const bool is_dir = it->is_directory(type_ec);
    if (want_dirs ? is_dir : (!is_dir && it->is_regular_file(type_ec))) names.push_back(name);
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("error while listing ", dir, ": ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool HasImageExtension(const std::string& name) {
  const std::string ext = absl::AsciiStrToLower(fs::path(name).extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp" ||
         ext == ".tif" || ext == ".tiff";
}

// One image existence check over all splits; reports the first missing file
// with where it was listed, and how many are missing in total.
absl::Status CheckFilesExist(const Dataset& dataset, const std::string& source) {
  size_t missing = 0;
  std::string first;
  for (Split split : {Split::kTrain, Split::kVal, Split::kTest}) {
    const std::vector<Item>& items = dataset.items(split);
    for (size_t i = 0; i < items.size(); ++i) {
      if (IsRegularFile(items[i].path)) continue;
      if (missing++ == 0) {
        first = absl::StrCat(items[i].path, " (", source, ": ", SplitName(split), "[", i, "])");
      }
    }
  }
  if (missing == 0) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("missing image file ", first, "; ", missing,
                                          " listed image file(s) missing in total"));
}

absl::Status Finish(const Dataset& dataset, const std::string& source, const LoadOptions& options) {
  absl::Status valid = ValidateDataset(dataset);
  if (!valid.ok()) {
    return absl::Status(valid.code(), absl::StrCat(source, ": ", valid.message()));
  }
  if (options.check_files) RETURN_IF_ERROR(CheckFilesExist(dataset, source));
  return absl::OkStatus();
}

// An entry of a split_zhou list, already type-checked.
struct SplitEntry {
  std::string path;
  int label = 0;
  std::string class_name;
};

absl::StatusOr<std::vector<SplitEntry>> ParseSplitEntries(const json& root, const char* key,
                                                          const std::string& path, bool required) {
  std::vector<SplitEntry> entries;
  auto it = root.find(key);
  if (it == root.end()) {
    if (required) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": missing key \"", key, "\""));
    }
    return entries;
  }
  if (!it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": \"", key, "\" is not a list"));
  }
  entries.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    const std::string where = absl::StrCat(path, ": \"", key, "\"[", i, "]");
    if (!e.is_array() || e.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": expected [image path, label, class name]"));
    }
    if (!e[0].is_string() || e[0].get_ref<const std::string&>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "[0]: image path is not a string"));
    }
    if (!e[1].is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "[1]: label is not an integer"));
    }
    const int64_t label = e[1].get<int64_t>();
    if (label < 0 || label > 10000000) {
      return absl::InvalidArgumentError(absl::StrCat(where, "[1]: label ", label, " out of range"));
    }
    if (!e[2].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "[2]: class name is not a string"));
    }
    entries.push_back(
        SplitEntry{e[0].get<std::string>(), static_cast<int>(label), e[2].get<std::string>()});
  }
  return entries;
}

// Class names by label from the training entries (Dassl's get_lab2cname):
// labels must be 0..n-1 without gaps, one name per label.
absl::StatusOr<std::vector<std::string>> ClassNamesFromTrain(const std::vector<SplitEntry>& train,
                                                             const std::string& path) {
  std::map<int, std::string> by_label;
  for (size_t i = 0; i < train.size(); ++i) {
    auto [it, inserted] = by_label.emplace(train[i].label, train[i].class_name);
    if (!inserted && it->second != train[i].class_name) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": \"train\"[", i, "]: label ", train[i].label, " named '",
                       train[i].class_name, "' but earlier '", it->second, "'"));
    }
  }
  std::vector<std::string> names;
  for (const auto& [label, name] : by_label) {
    if (label != static_cast<int>(names.size())) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": \"train\" has no item with label ",
                                                     names.size(), " (labels must be 0..",
                                                     by_label.size() - 1, ")"));
    }
    names.push_back(name);
  }
  if (names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": \"train\" is empty: no classes"));
  }
  return names;
}

absl::StatusOr<std::vector<Item>> ToItems(const std::vector<SplitEntry>& entries,
                                          const std::vector<std::string>& class_names,
                                          const std::string& image_root, const char* key,
                                          const std::string& path) {
  std::vector<Item> items;
  items.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const SplitEntry& e = entries[i];
    if (e.label >= static_cast<int>(class_names.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": \"", key, "\"[", i, "][1]: label ", e.label,
                       " out of range: the training set has ", class_names.size(), " classes"));
    }
    if (class_names[static_cast<size_t>(e.label)] != e.class_name) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": \"", key, "\"[", i, "][2]: unknown class '", e.class_name, "' for label ",
          e.label, " (train calls it '", class_names[static_cast<size_t>(e.label)], "')"));
    }
    items.push_back(Item{JoinPath(image_root, e.path), e.label});
  }
  return items;
}

// Finds the dataset folder: root/<folder> when it exists, else root itself
// when it holds `marker`.
std::string ResolveDatasetDir(const std::string& root, const CoopLayout& layout,
                              const std::string& marker) {
  const std::string nested = JoinPath(root, layout.folder);
  if (IsDirectory(nested)) return nested;
  if (IsRegularFile(JoinPath(root, marker))) return root;
  return nested;  // Errors then name the expected place.
}

}  // namespace

const std::vector<CoopLayout>& CoopLayouts() {
  static const std::vector<CoopLayout>* const kLayouts = new std::vector<CoopLayout>{
      {"ImageNet", "imagenet", "images", ""},
      {"Caltech101", "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json"},
      {"OxfordPets", "oxford_pets", "images", "split_zhou_OxfordPets.json"},
      {"StanfordCars", "stanford_cars", "", "split_zhou_StanfordCars.json"},
      {"OxfordFlowers", "oxford_flowers", "jpg", "split_zhou_OxfordFlowers.json"},
      {"Food101", "food-101", "images", "split_zhou_Food101.json"},
      {"FGVCAircraft", "fgvc_aircraft", "images", ""},
      {"SUN397", "sun397", "SUN397", "split_zhou_SUN397.json"},
      {"DescribableTextures", "dtd", "images", "split_zhou_DescribableTextures.json"},
      {"EuroSAT", "eurosat", "2750", "split_zhou_EuroSAT.json"},
      {"UCF101", "ucf101", "UCF-101-midframes", "split_zhou_UCF101.json"},
  };
  return *kLayouts;
}

absl::StatusOr<Dataset> LoadSplitJson(const std::string& split_path, const std::string& image_root,
                                      const std::string& name, const LoadOptions& options) {
  ASSIGN_OR_RETURN(json root, ReadJsonFile(split_path, options));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(split_path, ": expected an object with \"train\", \"val\", \"test\""));
  }
  ASSIGN_OR_RETURN(std::vector<SplitEntry> train,
                   ParseSplitEntries(root, "train", split_path, true));
  ASSIGN_OR_RETURN(std::vector<SplitEntry> val, ParseSplitEntries(root, "val", split_path, false));
  ASSIGN_OR_RETURN(std::vector<SplitEntry> test, ParseSplitEntries(root, "test", split_path, true));

  Dataset dataset;
  dataset.name = name;
  dataset.image_root = image_root;
  ASSIGN_OR_RETURN(dataset.class_names, ClassNamesFromTrain(train, split_path));
  ASSIGN_OR_RETURN(dataset.train,
                   ToItems(train, dataset.class_names, image_root, "train", split_path));
  ASSIGN_OR_RETURN(dataset.val, ToItems(val, dataset.class_names, image_root, "val", split_path));
  ASSIGN_OR_RETURN(dataset.test,
                   ToItems(test, dataset.class_names, image_root, "test", split_path));
  RETURN_IF_ERROR(Finish(dataset, split_path, options));
  return dataset;
}

absl::StatusOr<Dataset> LoadImageNet(const std::string& dataset_dir, const LoadOptions& options) {
  const std::string names_path = JoinPath(dataset_dir, "classnames.txt");
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(names_path, options));
  std::unordered_map<std::string, std::string> name_by_wnid;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const size_t space = lines[i].find(' ');
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(names_path, ": line ", i + 1, ": expected \"<wnid> <class name>\""));
    }
    name_by_wnid[lines[i].substr(0, space)] = lines[i].substr(space + 1);
  }
  const std::string image_dir = JoinPath(dataset_dir, "images");
  Dataset dataset;
  dataset.name = "ImageNet";
  dataset.image_root = image_dir;
  std::unordered_map<std::string, int> label_by_wnid;
  for (Split split : {Split::kTrain, Split::kTest}) {
    const std::string split_dir = JoinPath(image_dir, split == Split::kTrain ? "train" : "val");
    ASSIGN_OR_RETURN(std::vector<std::string> folders, ListDir(split_dir, /*want_dirs=*/true));
    for (const std::string& wnid : folders) {
      const std::string folder = JoinPath(split_dir, wnid);
      int label = 0;
      if (split == Split::kTrain) {
        auto it = name_by_wnid.find(wnid);
        if (it == name_by_wnid.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat(folder, ": unknown class: ", wnid, " is not in ", names_path));
        }
        label = dataset.num_classes();
        label_by_wnid[wnid] = label;
        dataset.class_names.push_back(it->second);
      } else {
        auto it = label_by_wnid.find(wnid);
        if (it == label_by_wnid.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat(folder, ": unknown class: ", wnid, " has no train folder"));
        }
        label = it->second;
      }
      ASSIGN_OR_RETURN(std::vector<std::string> files, ListDir(folder, /*want_dirs=*/false));
      for (const std::string& file : files) {
        dataset.mutable_items(split).push_back(Item{JoinPath(folder, file), label});
      }
    }
  }
  RETURN_IF_ERROR(Finish(dataset, dataset_dir, options));
  return dataset;
}

absl::StatusOr<Dataset> LoadFgvcAircraft(const std::string& dataset_dir,
                                         const LoadOptions& options) {
  const std::string variants_path = JoinPath(dataset_dir, "variants.txt");
  ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(variants_path, options));
  Dataset dataset;
  dataset.name = "FGVCAircraft";
  dataset.image_root = JoinPath(dataset_dir, "images");
  std::unordered_map<std::string, int> label_by_name;
  for (const std::string& line : lines) {
    if (line.empty()) continue;
    label_by_name.emplace(line, dataset.num_classes());
    dataset.class_names.push_back(line);
  }
  const std::pair<Split, const char*> kFiles[] = {{Split::kTrain, "images_variant_train.txt"},
                                                  {Split::kVal, "images_variant_val.txt"},
                                                  {Split::kTest, "images_variant_test.txt"}};
  for (const auto& [split, file] : kFiles) {
    const std::string path = JoinPath(dataset_dir, file);
    ASSIGN_OR_RETURN(std::vector<std::string> split_lines, ReadLines(path, options));
    for (size_t i = 0; i < split_lines.size(); ++i) {
      const std::string& line = split_lines[i];
      if (line.empty()) continue;
      const size_t space = line.find(' ');
      if (space == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": line ", i + 1, ": expected \"<image id> <variant>\""));
      }
      const std::string variant = line.substr(space + 1);
      auto it = label_by_name.find(variant);
      if (it == label_by_name.end()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": line ", i + 1, ": unknown class '",
                                                       variant, "' (not in ", variants_path, ")"));
      }
      dataset.mutable_items(split).push_back(
          Item{JoinPath(dataset.image_root, line.substr(0, space) + ".jpg"), it->second});
    }
  }
  RETURN_IF_ERROR(Finish(dataset, dataset_dir, options));
  return dataset;
}

absl::StatusOr<Dataset> LoadCoopDataset(const std::string& root, const std::string& name,
                                        const LoadOptions& options) {
  for (const CoopLayout& layout : CoopLayouts()) {
    if (layout.name != name) continue;
    if (layout.name == "ImageNet") {
      return LoadImageNet(ResolveDatasetDir(root, layout, "classnames.txt"), options);
    }
    if (layout.name == "FGVCAircraft") {
      return LoadFgvcAircraft(ResolveDatasetDir(root, layout, "variants.txt"), options);
    }
    const std::string dir = ResolveDatasetDir(root, layout, layout.split_file);
    ASSIGN_OR_RETURN(Dataset dataset,
                     LoadSplitJson(JoinPath(dir, layout.split_file),
                                   JoinPath(dir, layout.image_subdir), name, options));
    return dataset;
  }
  // Generic mode.
  std::string dataset_name = name;
  if (dataset_name.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> files, ListDir(root, /*want_dirs=*/false));
    std::vector<std::string> candidates;
    for (const std::string& file : files) {
      if (absl::StartsWith(file, "split_zhou_") && absl::EndsWith(file, ".json")) {
        candidates.push_back(file);
      }
    }
    if (candidates.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          root, ": no dataset name given and ", candidates.size(),
          " split_zhou_*.json files found (need exactly one): ", absl::StrJoin(candidates, ", ")));
    }
    const std::string& file = candidates[0];
    dataset_name = file.substr(11, file.size() - 11 - 5);
  }
  const std::string split_path = JoinPath(root, "split_zhou_" + dataset_name + ".json");
  if (!IsRegularFile(split_path)) {
    std::vector<std::string> known;
    for (const CoopLayout& layout : CoopLayouts()) known.push_back(layout.name);
    return absl::NotFoundError(absl::StrCat(
        "missing split file ", split_path, " (dataset '", dataset_name, "' is not one of ",
        absl::StrJoin(known, ", "), ", so a split_zhou_<name>.json is required)"));
  }
  return LoadSplitJson(split_path, options.image_root.empty() ? root : options.image_root,
                       dataset_name, options);
}

absl::StatusOr<Dataset> LoadClassFolders(const std::string& root, const std::string& name,
                                         const LoadOptions& options) {
  if (!IsDirectory(root)) {
    return absl::NotFoundError(absl::StrCat("dataset folder ", root, " does not exist"));
  }
  Dataset dataset;
  dataset.name = name;
  dataset.image_root = root;
  const bool has_splits = IsDirectory(JoinPath(root, "train"));
  const std::string train_dir = has_splits ? JoinPath(root, "train") : root;
  ASSIGN_OR_RETURN(dataset.class_names, ListDir(train_dir, /*want_dirs=*/true));
  if (dataset.class_names.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(train_dir, ": empty class list (no class subfolders)"));
  }
  std::unordered_map<std::string, int> label_by_name;
  for (int i = 0; i < dataset.num_classes(); ++i) {
    label_by_name[dataset.class_names[static_cast<size_t>(i)]] = i;
  }
  const std::pair<Split, const char*> kSplits[] = {
      {Split::kTrain, "train"}, {Split::kVal, "val"}, {Split::kTest, "test"}};
  for (const auto& [split, sub] : kSplits) {
    std::string split_dir;
    if (has_splits) {
      split_dir = JoinPath(root, sub);
      if (!IsDirectory(split_dir)) continue;
    } else {
      if (split != Split::kTrain) continue;
      split_dir = root;
    }
    ASSIGN_OR_RETURN(std::vector<std::string> folders, ListDir(split_dir, /*want_dirs=*/true));
    for (const std::string& folder : folders) {
      auto it = label_by_name.find(folder);
      if (it == label_by_name.end()) {
        return absl::InvalidArgumentError(absl::StrCat(JoinPath(split_dir, folder),
                                                       ": unknown class '", folder,
                                                       "' (no such folder in ", train_dir, ")"));
      }
      const std::string class_dir = JoinPath(split_dir, folder);
      ASSIGN_OR_RETURN(std::vector<std::string> files, ListDir(class_dir, /*want_dirs=*/false));
      for (const std::string& file : files) {
        if (!HasImageExtension(file)) continue;
        dataset.mutable_items(split).push_back(Item{JoinPath(class_dir, file), it->second});
      }
    }
  }
  RETURN_IF_ERROR(Finish(dataset, root, options));
  return dataset;
}

absl::StatusOr<Dataset> LoadManifest(const std::string& manifest_path, const LoadOptions& options) {
  ASSIGN_OR_RETURN(json root, ReadJsonFile(manifest_path, options));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path, ": expected an object with \"class_names\" and \"items\""));
  }
  Dataset dataset;
  const std::string manifest_dir = fs::path(manifest_path).parent_path().string();
  dataset.image_root = manifest_dir;
  if (auto it = root.find("name"); it != root.end()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(manifest_path, ": \"name\" is not a string"));
    }
    dataset.name = it->get<std::string>();
  }
  if (auto it = root.find("image_root"); it != root.end()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(manifest_path, ": \"image_root\" is not a string"));
    }
    dataset.image_root = JoinPath(manifest_dir, it->get<std::string>());
  }
  auto names = root.find("class_names");
  if (names == root.end() || !names->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path, ": \"class_names\" missing or not a list"));
  }
  for (size_t i = 0; i < names->size(); ++i) {
    if (!(*names)[i].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(manifest_path, ": \"class_names\"[", i, "] is not a string"));
    }
    dataset.class_names.push_back((*names)[i].get<std::string>());
  }
  auto items = root.find("items");
  if (items == root.end() || !items->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(manifest_path, ": \"items\" missing or not a list"));
  }
  for (size_t i = 0; i < items->size(); ++i) {
    const json& e = (*items)[i];
    const std::string where = absl::StrCat(manifest_path, ": \"items\"[", i, "]");
    if (!e.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " is not an object"));
    }
    auto path = e.find("path");
    if (path == e.end() || !path->is_string() || path->get_ref<const std::string&>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".path missing or not a string"));
    }
    auto label = e.find("label");
    if (label == e.end() || !label->is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".label missing or not an integer"));
    }
    const int64_t label_value = label->get<int64_t>();
    if (label_value < 0 || label_value >= static_cast<int64_t>(dataset.class_names.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".label ", label_value, " out of range [0, ", dataset.class_names.size(), ")"));
    }
    Split split = Split::kTrain;
    if (auto s = e.find("split"); s != e.end()) {
      const std::string value = s->is_string() ? s->get<std::string>() : "";
      if (value == "train") {
        split = Split::kTrain;
      } else if (value == "val") {
        split = Split::kVal;
      } else if (value == "test") {
        split = Split::kTest;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".split must be \"train\", \"val\" or \"test\""));
      }
    }
    dataset.mutable_items(split).push_back(Item{
        JoinPath(dataset.image_root, path->get<std::string>()), static_cast<int>(label_value)});
  }
  RETURN_IF_ERROR(Finish(dataset, manifest_path, options));
  return dataset;
}

}  // namespace provp::data
