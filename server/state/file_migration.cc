// Implementation of file_migration.h.
#include "server/state/file_migration.h"

#include <filesystem>
#include <functional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/data/loaders.h"
#include "core/util/status_macros.h"
#include "server/state/dataset_manifest.h"
#include "server/state/resource_names.h"
#include "server/state/tables.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;

// Read-modify-write of one record, compare-and-set where the store has
// versions; `change` returns false when there is nothing to do (another
// replica moved it first).
template <typename M>
absl::Status UpdateRecord(store::Store* store, store::Kind kind, const RecordTable<M>& table,
                          const std::string& id, const std::function<bool(M&)>& change) {
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(store::Record record, store->Get(kind, id));
    ASSIGN_OR_RETURN(M message, table.ParseAs(record));
    if (!change(message)) return absl::OkStatus();
    record.data = message.SerializeAsString();
    absl::StatusOr<int64_t> version = store->Update(kind, record, record.version);
    if (version.ok()) return absl::OkStatus();
    if (version.status().code() == absl::StatusCode::kUnimplemented) {
      return store->Put(kind, record);
    }
    if (version.status().code() != absl::StatusCode::kAborted || attempt >= 10) {
      return version.status();
    }
  }
}

std::string IdOf(const std::string& name, absl::string_view collection) {
  return name.substr(collection.size() + 1);
}

absl::Status MovePromptSet(store::Store* store, FileRefs* files, const std::string& data_dir,
                           const v1::PromptSet& ps) {
  const std::string id = IdOf(ps.name(), kPromptSets);
  const std::string path = absl::StrCat(data_dir, "/prompt_sets/", id, ".pset");
  FileRefs::Pin pin = files->NewPin();
  ASSIGN_OR_RETURN(std::string key, files->PutFile(pin, path));
  const RecordTable<v1::PromptSet> table = PromptSetTable(store);
  RETURN_IF_ERROR(UpdateRecord<v1::PromptSet>(store, store::Kind::kPromptSet, table, id,
                                              [&](v1::PromptSet& cur) {
                                                if (!cur.content_key().empty()) return false;
                                                cur.set_content_key(key);
                                                return true;
                                              }));
  std::error_code ec;
  fs::remove(path, ec);
  return absl::OkStatus();
}

absl::Status MoveDataset(store::Store* store, FileRefs* files, const std::string& data_dir,
                         const v1::Dataset& ds) {
  const std::string id = IdOf(ds.name(), kDatasets);
  const std::string dir = absl::StrCat(data_dir, "/datasets/", id);
  data::LoadOptions lo;
  lo.check_files = false;
  ASSIGN_OR_RETURN(data::Dataset manifest, data::LoadManifest(dir + "/manifest.json", lo));
  FileRefs::Pin pin = files->NewPin();
  if (ds.source() != v1::Dataset::DIRECTORY) {
    for (auto split : {data::Split::kTrain, data::Split::kVal, data::Split::kTest}) {
      for (data::Item& item : manifest.mutable_items(split)) {
        ASSIGN_OR_RETURN(item.path, files->PutFile(pin, item.path));
      }
    }
  }
  ASSIGN_OR_RETURN(std::string key, files->Put(pin, SerializeDatasetManifest(manifest)));
  const RecordTable<v1::Dataset> table = DatasetTable(store);
  RETURN_IF_ERROR(
      UpdateRecord<v1::Dataset>(store, store::Kind::kDataset, table, id, [&](v1::Dataset& cur) {
        if (!cur.manifest_key().empty()) return false;
        cur.set_manifest_key(key);
        return true;
      }));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return absl::OkStatus();
}

}  // namespace

FileMigrationResult MigrateNameAddressedFiles(store::Store* store, FileRefs* files,
                                              const std::string& data_dir) {
  FileMigrationResult result;
  absl::StatusOr<std::vector<v1::PromptSet>> sets = PromptSetTable(store).List({});
  if (!sets.ok()) {
    result.failed.push_back(absl::StrCat("promptSets: ", sets.status().ToString()));
  } else {
    for (const v1::PromptSet& ps : *sets) {
      if (!ps.content_key().empty()) continue;
      absl::Status moved = MovePromptSet(store, files, data_dir, ps);
      if (moved.ok()) {
        ++result.prompt_sets;
      } else {
        result.failed.push_back(absl::StrCat(ps.name(), ": ", moved.ToString()));
      }
    }
  }
  absl::StatusOr<std::vector<v1::Dataset>> datasets = DatasetTable(store).List({});
  if (!datasets.ok()) {
    result.failed.push_back(absl::StrCat("datasets: ", datasets.status().ToString()));
  } else {
    for (const v1::Dataset& ds : *datasets) {
      if (!ds.manifest_key().empty()) continue;
      absl::Status moved = MoveDataset(store, files, data_dir, ds);
      if (moved.ok()) {
        ++result.datasets;
      } else {
        result.failed.push_back(absl::StrCat(ds.name(), ": ", moved.ToString()));
      }
    }
  }
  return result;
}

}  // namespace provp::server
