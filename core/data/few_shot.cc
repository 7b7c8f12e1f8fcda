// Few-shot sampling (CoOp rule, bit-exact with Python) and explicit lists;
// see few_shot.h.
#include "core/data/few_shot.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "core/data/json_file.h"
#include "core/data/py_random.h"
#include "core/util/status_macros.h"

namespace provp::data {
namespace {

using nlohmann::json;

// Dassl's generate_fewshot_dataset for one split, sharing `rng` across
// calls so val continues the stream where train left it.
absl::Status SampleSplit(const Dataset& dataset, Split split, int shots, bool error_if_fewer,
                         PyRandom& rng, std::vector<Item>& out,
                         std::vector<ShortClass>& short_classes) {
  const std::vector<Item>& items = dataset.items(split);
  // split_dataset_by_label: a defaultdict keeps first-appearance order.
  std::vector<int> order;
  std::unordered_map<int, std::vector<size_t>> by_label;
  for (size_t i = 0; i < items.size(); ++i) {
    auto [it, inserted] = by_label.try_emplace(items[i].label);
    if (inserted) order.push_back(items[i].label);
    it->second.push_back(i);
  }
  out.clear();
  for (int label : order) {
    const std::vector<size_t>& members = by_label[label];
    const int available = static_cast<int>(members.size());
    if (available >= shots) {
      ASSIGN_OR_RETURN(std::vector<int64_t> picks, rng.Sample(available, shots));
      for (int64_t p : picks) out.push_back(items[members[static_cast<size_t>(p)]]);
      continue;
    }
    const std::string& name = label >= 0 && label < dataset.num_classes()
                                  ? dataset.class_names[static_cast<size_t>(label)]
                                  : std::string("?");
    if (error_if_fewer) {
      return absl::FailedPreconditionError(
          absl::StrCat("fewer images than shots: ", SplitName(split), " class '", name, "' (label ",
                       label, ") has ", available, " image(s), ", shots, " shots requested"));
    }
    short_classes.push_back(ShortClass{split, label, name, available, shots});
    for (size_t m : members) out.push_back(items[m]);
  }
  return absl::OkStatus();
}

std::string Normalize(const std::string& path) {
  return std::filesystem::path(path).lexically_normal().string();
}

}  // namespace

absl::StatusOr<FewShotResult> SampleFewShot(const Dataset& dataset, const FewShotOptions& options) {
  if (options.shots < 1) {
    return absl::InvalidArgumentError(absl::StrCat("shots must be >= 1, got ", options.shots));
  }
  FewShotResult result;
  result.dataset = dataset;
  PyRandom rng(options.seed);
  RETURN_IF_ERROR(SampleSplit(dataset, Split::kTrain, options.shots, options.error_if_fewer, rng,
                              result.dataset.train, result.short_classes));
  if (options.sample_val) {
    // Val is never the selection criterion for error_if_fewer: the
    // reference samples it with min(K, 4) and tolerates short classes.
    RETURN_IF_ERROR(SampleSplit(dataset, Split::kVal, std::min(options.shots, 4),
                                /*error_if_fewer=*/false, rng, result.dataset.val,
                                result.short_classes));
  }
  return result;
}

absl::StatusOr<Dataset> ApplyFewShotList(const Dataset& dataset, const std::string& list_path) {
  ASSIGN_OR_RETURN(json root, internal::ReadJsonFile(list_path, uint64_t{256} << 20));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(list_path, ": expected an object with \"train\" (and \"val\") lists"));
  }
  if (!root.contains("train")) {
    return absl::InvalidArgumentError(absl::StrCat(list_path, ": missing key \"train\""));
  }
  Dataset out = dataset;
  for (Split split : {Split::kTrain, Split::kVal}) {
    const std::string key(SplitName(split));
    auto it = root.find(key);
    if (it == root.end()) continue;
    if (!it->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(list_path, ": \"", key, "\" is not a list"));
    }
    std::unordered_map<std::string, size_t> index;
    const std::vector<Item>& items = dataset.items(split);
    for (size_t i = 0; i < items.size(); ++i) index.emplace(Normalize(items[i].path), i);
    std::vector<Item> chosen;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      const json* path = &e;
      if (e.is_array() && !e.empty()) path = &e[0];
      if (!path->is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(list_path, ": \"", key, "\"[", i, "] is not an image path"));
      }
      const std::string rel = path->get<std::string>();
      const std::string full =
          Normalize((std::filesystem::path(dataset.image_root) / rel).string());
      auto found = index.find(full);
      if (found == index.end()) {
        return absl::InvalidArgumentError(absl::StrCat(list_path, ": \"", key, "\"[", i, "]: ", rel,
                                                       " is not in the dataset's ", key, " split"));
      }
      chosen.push_back(items[found->second]);
    }
    out.mutable_items(split) = std::move(chosen);
  }
  return out;
}

std::string DescribeShortClasses(const std::vector<ShortClass>& short_classes) {
  std::string out;
  for (const ShortClass& c : short_classes) {
    absl::StrAppend(&out, SplitName(c.split), ": class '", c.class_name, "' (label ", c.label,
                    ") has ", c.available, " image(s), fewer than ", c.requested, " shots\n");
  }
  return out;
}

}  // namespace provp::data
