// Implementation of dataset_registry.h.
#include "server/state/dataset_registry.h"

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "core/data/loaders.h"
#include "core/image/image_io.h"
#include "core/util/error_reason.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "server/state/dataset_manifest.h"
#include "server/state/errors.h"
#include "server/state/job_states.h"
#include "server/state/request_checks.h"
#include "server/state/resource_names.h"
#include "server/state/tables.h"
#include "server/state/timestamps.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;

// Shared checks of uploads and registrations: class names, novel subset,
// shots; fills base/novel names and stats.
absl::Status FinishDataset(const std::vector<std::string>& names,
                           const std::vector<std::string>& novel, int min_shots,
                           const data::Dataset& data, int64_t total_bytes, v1::Dataset* ds) {
  std::set<std::string> novel_set(novel.begin(), novel.end());
  std::set<std::string> all(names.begin(), names.end());
  for (size_t i = 0; i < novel.size(); ++i) {
    if (!all.count(novel[i])) {
      return InvalidArgument(
          "UNKNOWN_CLASS",
          absl::StrCat("novel_class_names[", i, "] ('", novel[i], "') is not among class_names"),
          absl::StrCat("novel_class_names[", i, "]"));
    }
  }
  if (novel_set.size() == names.size()) {
    return InvalidArgument("NO_BASE_CLASSES", "every class is novel; nothing to train on",
                           "novel_class_names");
  }
  std::vector<int> train_counts = data::CountPerClass(data, data::Split::kTrain);
  int64_t max_shots = -1;
  const int need = std::max(1, min_shots);
  for (size_t c = 0; c < names.size(); ++c) {
    ds->add_class_names(names[c]);
    if (novel_set.count(names[c])) {
      ds->add_novel_class_names(names[c]);
      continue;
    }
    ds->add_base_class_names(names[c]);
    if (train_counts[c] < need) {
      return InvalidArgument("NOT_ENOUGH_SHOTS",
                             absl::StrCat("class '", names[c], "' has ", train_counts[c],
                                          " training images; at least ", need, " are required"),
                             absl::StrCat("class_names[", c, "]"));
    }
    max_shots = max_shots < 0 ? train_counts[c] : std::min<int64_t>(max_shots, train_counts[c]);
  }
  v1::DatasetStats* st = ds->mutable_stats();
  st->set_num_train_images(static_cast<int64_t>(data.train.size()));
  st->set_num_val_images(static_cast<int64_t>(data.val.size()));
  st->set_num_test_images(static_cast<int64_t>(data.test.size()));
  st->set_num_images(st->num_train_images() + st->num_val_images() + st->num_test_images());
  for (int c : train_counts) st->add_train_images_per_class(c);
  st->set_max_shots(std::max<int64_t>(0, max_shots));
  st->set_total_bytes(total_bytes);
  return absl::OkStatus();
}

}  // namespace

DatasetRegistry::DatasetRegistry(store::Store* store, FileRefs* files, const util::Clock* clock,
                                 Logger* logger, DatasetRegistryOptions options)
    : table_(DatasetTable(store)),
      jobs_(JobTable(store)),
      files_(files),
      clock_(clock),
      logger_(logger),
      options_(std::move(options)) {}

std::string DatasetRegistry::LegacyDir(const std::string& id) const {
  return absl::StrCat(options_.data_dir, "/datasets/", id);
}

absl::StatusOr<data::Dataset> DatasetRegistry::ReadManifest(const v1::Dataset& ds) const {
  if (ds.manifest_key().empty()) {
    // Not moved into the file store (file_migration.h): the old layout.
    data::LoadOptions lo;
    lo.check_files = false;
    const std::string id = ds.name().substr(std::string(kDatasets).size() + 1);
    return data::LoadManifest(LegacyDir(id) + "/manifest.json", lo);
  }
  ASSIGN_OR_RETURN(std::string bytes,
                   files_->files()->Read(ds.manifest_key(), uint64_t{512} << 20));
  return ParseDatasetManifest(bytes, absl::StrCat("the manifest of ", ds.name()));
}

absl::Status DatasetRegistry::CheckCapacity(const std::string& id) const {
  ASSIGN_OR_RETURN(bool exists, table_.Exists(id));
  if (exists) {
    ErrorDetail d;
    d.resource_type = "provp.v1.Dataset";
    d.resource_name = table_.NameOf(id);
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                     absl::StrCat(d.resource_name, " already exists"), d);
  }
  ASSIGN_OR_RETURN(int64_t count, table_.Count());
  if (count >= options_.limits.max_datasets) {
    return ResourceExhausted(
        "TOO_MANY_DATASETS", "max_datasets",
        absl::StrCat("the server holds its limit of ", options_.limits.max_datasets, " datasets"));
  }
  return absl::OkStatus();
}

absl::Status DatasetRegistry::Save(const v1::Dataset& ds, const std::string& id,
                                   const std::string& request_id) {
  return table_.Insert(
      id, ds, {v1::Dataset::State_Name(ds.state()), request_id, absl::ToUnixMicros(clock_->Now())});
}

absl::StatusOr<v1::Dataset> DatasetRegistry::Upload(const ReadUploadMessage& read) {
  const Limits& limits = options_.limits;
  v1::UploadDatasetRequest msg;
  ASSIGN_OR_RETURN(bool first, read(&msg));
  if (!first || !msg.has_metadata()) {
    return InvalidArgument("METADATA_FIRST", "the first message must carry metadata", "metadata");
  }
  const v1::DatasetMetadata meta = msg.metadata();
  RETURN_IF_ERROR(ValidateId(meta.dataset_id(), "metadata.dataset_id"));
  std::vector<std::string> names(meta.class_names().begin(), meta.class_names().end());
  RETURN_IF_ERROR(
      ValidateNames(names, "metadata.class_names", limits, limits.max_classes_per_request));
  if (static_cast<int>(meta.display_name().size()) > limits.max_name_length) {
    return InvalidArgument("NAME_TOO_LONG", "display_name is too long", "metadata.display_name");
  }
  if (meta.min_shots() < 0) {
    return InvalidArgument("INVALID_SHOTS", "min_shots must be >= 0", "metadata.min_shots");
  }
  if (!meta.request_id().empty()) {
    ASSIGN_OR_RETURN(std::optional<v1::Dataset> prior, table_.FindByRequestId(meta.request_id()));
    if (prior.has_value()) {
      // A retried upload: the client still sends the images; drain them.
      while (true) {
        ASSIGN_OR_RETURN(bool more, read(&msg));
        if (!more) break;
      }
      return *prior;
    }
  }
  RETURN_IF_ERROR(CheckCapacity(meta.dataset_id()));
  const std::string id = meta.dataset_id();
  // Each image goes into the file store as it arrives (no staging copy);
  // the pin keeps them from removal until the record names the manifest.
  FileRefs::Pin pin = files_->NewPin();
  auto body = [&]() -> absl::StatusOr<v1::Dataset> {
    data::Dataset d;
    d.name = id;
    d.class_names = names;
    int64_t total_bytes = 0;
    int64_t index = 0;
    image::DecodeOptions decode;
    decode.max_pixels = limits.max_pixels_per_image;
    while (true) {
      ASSIGN_OR_RETURN(bool more, read(&msg));
      if (!more) break;
      if (!msg.has_images()) {
        return InvalidArgument("METADATA_TWICE", "only the first message may carry metadata",
                               "metadata");
      }
      for (const v1::LabeledImage& img : msg.images().images()) {
        const std::string field = absl::StrCat("images[", index, "]");
        if (index >= limits.max_dataset_images) {
          return ResourceExhausted(
              "TOO_MANY_IMAGES", "max_dataset_images",
              absl::StrCat("a dataset may hold at most ", limits.max_dataset_images, " images"));
        }
        if (img.label() < 0 || img.label() >= static_cast<int>(names.size())) {
          return InvalidArgument(
              "LABEL_OUT_OF_RANGE",
              absl::StrCat(field, ".label ", img.label(), " is not in [0, ", names.size(), ")"),
              field + ".label");
        }
        total_bytes += static_cast<int64_t>(img.encoded().size());
        if (total_bytes > limits.max_upload_bytes) {
          return ResourceExhausted(
              "UPLOAD_TOO_LARGE", "max_upload_bytes",
              absl::StrCat("upload exceeds ", limits.max_upload_bytes, " bytes"));
        }
        auto decoded = image::DecodeImage(img.encoded(), decode);
        if (!decoded.ok()) {
          return InvalidArgument(util::ErrorReasonOf(decoded.status()) == util::kReasonImageTooLarge
                                     ? util::kReasonImageTooLarge
                                     : "IMAGE_DECODE_FAILED",
                                 absl::StrCat(field, ": ", decoded.status().message()),
                                 field + ".encoded");
        }
        ASSIGN_OR_RETURN(std::string key, files_->Put(pin, img.encoded()));
        data::Item item{key, img.label()};
        (img.split() == v1::VAL    ? d.val
         : img.split() == v1::TEST ? d.test
                                   : d.train)
            .push_back(item);
        ++index;
      }
    }
    v1::Dataset ds;
    ds.set_name(table_.NameOf(id));
    ds.set_display_name(meta.display_name());
    ds.set_state(v1::Dataset::ACTIVE);
    ds.set_source(v1::Dataset::UPLOAD);
    SetTimestamp(clock_->Now(), ds.mutable_create_time());
    for (const auto& [k, v] : meta.labels()) (*ds.mutable_labels())[k] = v;
    RETURN_IF_ERROR(FinishDataset(
        names,
        std::vector<std::string>(meta.novel_class_names().begin(), meta.novel_class_names().end()),
        meta.min_shots(), d, total_bytes, &ds));
    ASSIGN_OR_RETURN(std::string manifest_key, files_->Put(pin, SerializeDatasetManifest(d)));
    ds.set_manifest_key(manifest_key);
    RETURN_IF_ERROR(Save(ds, id, meta.request_id()));
    return ds;
  };
  absl::StatusOr<v1::Dataset> uploaded = body();
  if (!uploaded.ok()) {
    // What this upload stored and no other record uses goes again.
    const std::vector<std::string> stored = pin.keys();
    { FileRefs::Pin released = std::move(pin); }
    files_->Release(stored);
  }
  return uploaded;
}

absl::StatusOr<v1::Dataset> DatasetRegistry::Register(const v1::RegisterDatasetRequest& req) {
  const Limits& limits = options_.limits;
  RETURN_IF_ERROR(ValidateId(req.dataset_id(), "dataset_id"));
  std::error_code ec;
  fs::path path = fs::weakly_canonical(req.path(), ec);
  bool allowed = false;
  for (const auto& r : options_.dataset_roots) {
    fs::path root = fs::weakly_canonical(r, ec);
    std::string rs = root.string();
    if (!rs.empty() && rs.back() != '/') rs += '/';
    if (absl::StartsWith(path.string() + "/", rs)) allowed = true;
  }
  if (!allowed || req.path().empty()) {
    return MakeError(absl::StatusCode::kPermissionDenied, "PATH_NOT_ALLOWED",
                     "path is not under any --dataset-root of this server");
  }
  if (!fs::is_directory(path, ec)) {
    return InvalidArgument("NOT_A_DIRECTORY", "path is not a directory", "path");
  }
  RETURN_IF_ERROR(CheckCapacity(req.dataset_id()));
  auto layout = req.layout();
  if (layout == v1::RegisterDatasetRequest::LAYOUT_UNSPECIFIED) {
    layout = v1::RegisterDatasetRequest::CLASS_FOLDERS;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      std::string n = e.path().filename().string();
      if (absl::StartsWith(n, "split_") && absl::EndsWith(n, ".json")) {
        layout = v1::RegisterDatasetRequest::COOP;
      }
    }
  }
  absl::StatusOr<data::Dataset> loaded;
  if (layout == v1::RegisterDatasetRequest::COOP) {
    std::string name;
    std::string sf = req.split_file();
    if (absl::StartsWith(sf, "split_zhou_") && absl::EndsWith(sf, ".json")) {
      name = sf.substr(11, sf.size() - 16);
    }
    loaded = data::LoadCoopDataset(path.string(), name);
  } else {
    loaded = data::LoadClassFolders(path.string(), req.dataset_id());
  }
  if (!loaded.ok()) return InvalidArgument("INVALID_DATASET", loaded.status().message(), "path");
  RETURN_IF_ERROR(
      ValidateNames(loaded->class_names, "class_names", limits, limits.max_classes_per_request));
  int64_t n = static_cast<int64_t>(loaded->train.size() + loaded->val.size() + loaded->test.size());
  if (n > limits.max_dataset_images) {
    return ResourceExhausted(
        "TOO_MANY_IMAGES", "max_dataset_images",
        absl::StrCat("dataset has ", n, " images; the limit is ", limits.max_dataset_images));
  }
  v1::Dataset ds;
  ds.set_name(table_.NameOf(req.dataset_id()));
  ds.set_display_name(req.display_name());
  ds.set_state(v1::Dataset::ACTIVE);
  ds.set_source(v1::Dataset::DIRECTORY);
  ds.set_source_path(path.string());
  SetTimestamp(clock_->Now(), ds.mutable_create_time());
  RETURN_IF_ERROR(FinishDataset(
      loaded->class_names,
      std::vector<std::string>(req.novel_class_names().begin(), req.novel_class_names().end()),
      req.min_shots(), *loaded, 0, &ds));
  // The images stay where they are; the manifest names them by absolute
  // path (the loaders resolved them against the registered folder).
  FileRefs::Pin pin = files_->NewPin();
  ASSIGN_OR_RETURN(std::string manifest_key, files_->Put(pin, SerializeDatasetManifest(*loaded)));
  ds.set_manifest_key(manifest_key);
  absl::Status saved = Save(ds, req.dataset_id(), "");
  if (!saved.ok()) {
    { FileRefs::Pin released = std::move(pin); }
    files_->Release({manifest_key});
    return saved;
  }
  return ds;
}

absl::StatusOr<v1::Dataset> DatasetRegistry::Get(const std::string& id) const {
  return table_.Get(id);
}

absl::StatusOr<RecordPage<v1::Dataset>> DatasetRegistry::List(int32_t page_size,
                                                              absl::string_view page_token) const {
  return table_.ListPage(page_size, page_token);
}

absl::Status DatasetRegistry::Delete(const std::string& id) {
  ASSIGN_OR_RETURN(v1::Dataset ds, Get(id));
  RecordFilter active;
  active.states = ActiveJobStateNames();
  ASSIGN_OR_RETURN(std::vector<v1::TuningJob> jobs, jobs_.List(active));
  for (const v1::TuningJob& job : jobs) {
    if (job.dataset() == ds.name()) {
      return FailedPrecondition("DATASET_IN_USE", ds.name(),
                                absl::StrCat(ds.name(), " is used by ", job.name()));
    }
  }
  // What the files are, read before the record goes (a manifest that cannot
  // be read leaves its images to the sweep, which refuses to run while a
  // live dataset's manifest is unreadable, so nothing in use goes).
  std::vector<std::string> keys;
  if (!ds.manifest_key().empty()) {
    keys.push_back(ds.manifest_key());
    absl::StatusOr<data::Dataset> manifest = ReadManifest(ds);
    if (manifest.ok()) {
      for (std::string& k : ImageKeysOf(*manifest)) keys.push_back(std::move(k));
    } else {
      logger_->Warning("a deleted dataset's manifest cannot be read; its images wait for the sweep",
                       {{"dataset", ds.name()}, {"error", manifest.status().ToString()}});
    }
  }
  RETURN_IF_ERROR(table_.Delete(id));
  files_->Release(keys);
  const fs::path dir = LegacyDir(id);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) {
    // The record is gone, so the files are only wasted space.
    logger_->Warning("could not remove a deleted dataset's files",
                     {{"path", dir.string()}, {"error", ec.message()}});
  }
  return absl::OkStatus();
}

}  // namespace provp::server
