// Implementation of dataset_manifest.h on nlohmann::json.
#include "server/state/dataset_manifest.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/store/file_store.h"

namespace provp::server {

std::string SerializeDatasetManifest(const data::Dataset& d) {
  nlohmann::json j;
  j["name"] = d.name;
  j["class_names"] = d.class_names;
  nlohmann::json items = nlohmann::json::array();
  for (auto split : {data::Split::kTrain, data::Split::kVal, data::Split::kTest}) {
    for (const auto& it : d.items(split)) {
      items.push_back(
          {{"path", it.path}, {"label", it.label}, {"split", std::string(data::SplitName(split))}});
    }
  }
  j["items"] = std::move(items);
  return j.dump();
}

absl::StatusOr<data::Dataset> ParseDatasetManifest(absl::string_view bytes,
                                                   absl::string_view what) {
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(what, " is not a dataset manifest: ", why));
  };
  nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  data::Dataset d;
  if (auto it = j.find("name"); it != j.end() && it->is_string()) d.name = it->get<std::string>();
  auto names = j.find("class_names");
  if (names == j.end() || !names->is_array()) return bad("\"class_names\" missing");
  for (const auto& n : *names) {
    if (!n.is_string()) return bad("a class name is not a string");
    d.class_names.push_back(n.get<std::string>());
  }
  auto items = j.find("items");
  if (items == j.end() || !items->is_array()) return bad("\"items\" missing");
  for (size_t i = 0; i < items->size(); ++i) {
    const nlohmann::json& e = (*items)[i];
    auto path = e.is_object() ? e.find("path") : e.end();
    auto label = e.is_object() ? e.find("label") : e.end();
    auto split = e.is_object() ? e.find("split") : e.end();
    if (path == e.end() || !path->is_string() || label == e.end() || !label->is_number_integer() ||
        split == e.end() || !split->is_string()) {
      return bad(absl::StrCat("items[", i, "] needs path, label and split"));
    }
    const int64_t l = label->get<int64_t>();
    if (l < 0 || l >= static_cast<int64_t>(d.class_names.size())) {
      return bad(absl::StrCat("items[", i, "].label is out of range"));
    }
    const std::string s = split->get<std::string>();
    std::vector<data::Item>* out = s == "train"  ? &d.train
                                   : s == "val"  ? &d.val
                                   : s == "test" ? &d.test
                                                 : nullptr;
    if (out == nullptr) return bad(absl::StrCat("items[", i, "].split is '", s, "'"));
    out->push_back(data::Item{path->get<std::string>(), static_cast<int>(l)});
  }
  return d;
}

std::vector<std::string> ImageKeysOf(const data::Dataset& d) {
  std::vector<std::string> keys;
  for (auto split : {data::Split::kTrain, data::Split::kVal, data::Split::kTest}) {
    for (const auto& it : d.items(split)) {
      if (store::IsContentKey(it.path)) keys.push_back(it.path);
    }
  }
  return keys;
}

}  // namespace provp::server
