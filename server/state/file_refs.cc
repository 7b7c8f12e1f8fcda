// Implementation of file_refs.h: references are collected from the records
// through the typed tables (and each dataset's manifest from the file
// store); removal goes through FileStore::Remove with the grace as cutoff.
#include "server/state/file_refs.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/status_macros.h"
#include "server/state/dataset_manifest.h"
#include "server/state/job_states.h"
#include "server/state/tables.h"

namespace provp::server {

FileRefs::Pin::Pin(Pin&& other) noexcept
    : refs_(std::exchange(other.refs_, nullptr)), keys_(std::move(other.keys_)) {}

FileRefs::Pin::~Pin() {
  if (refs_ != nullptr) refs_->Unpin(keys_);
}

FileRefs::FileRefs(store::Store* store, store::FileStore* files, Logger* logger,
                   FileRefsOptions options)
    : store_(store), files_(files), logger_(logger), options_(std::move(options)) {}

void FileRefs::PinKey(Pin& pin, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  ++pins_[key];
  pin.keys_.push_back(key);
}

void FileRefs::Unpin(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& key : keys) {
    auto it = pins_.find(key);
    if (it != pins_.end() && --it->second == 0) pins_.erase(it);
  }
}

// The store hands over the key once it has hashed the content and before
// the file can be seen under it; it is pinned then, so no removal in this
// process can come between the write and the pin. A write that fails can
// still have left its file in place (the directory fsync after the rename
// failed, say): it goes again unless a record or another pin holds it, so a
// failed write never leaves an unused file.
absl::StatusOr<std::string> FileRefs::PutPinned(
    Pin& pin, absl::FunctionRef<absl::StatusOr<std::string>(store::FileStore::KeyKnown)> write) {
  std::string pinned;
  absl::StatusOr<std::string> stored = write([&](const std::string& key) {
    PinKey(pin, key);
    pinned = key;
  });
  if (!stored.ok() && !pinned.empty()) DropFailedWrite(pin, pinned);
  return stored;
}

absl::StatusOr<std::string> FileRefs::Put(Pin& pin, absl::string_view bytes) {
  return PutPinned(
      pin, [&](store::FileStore::KeyKnown key_known) { return files_->Put(bytes, key_known); });
}

absl::StatusOr<std::string> FileRefs::PutFile(Pin& pin, const std::string& path) {
  return PutPinned(
      pin, [&](store::FileStore::KeyKnown key_known) { return files_->PutFile(path, key_known); });
}

void FileRefs::DropFailedWrite(Pin& pin, const std::string& key) {
  auto it = std::find(pin.keys_.rbegin(), pin.keys_.rend(), key);
  if (it != pin.keys_.rend()) pin.keys_.erase(std::next(it).base());
  Unpin({key});
  Release({key});
}

absl::StatusOr<std::set<std::string>> FileRefs::ReferencedKeys(bool checkpoints_only) const {
  std::set<std::string> keys;
  RecordFilter unfinished;
  unfinished.states = ActiveJobStateNames();
  ASSIGN_OR_RETURN(std::vector<v1::TuningJob> jobs, JobTable(store_).List(unfinished));
  for (const v1::TuningJob& job : jobs) {
    if (!job.checkpoint_key().empty()) keys.insert(job.checkpoint_key());
  }
  if (checkpoints_only) return keys;
  ASSIGN_OR_RETURN(std::vector<v1::PromptSet> sets, PromptSetTable(store_).List({}));
  for (const v1::PromptSet& ps : sets) {
    if (!ps.content_key().empty()) keys.insert(ps.content_key());
  }
  ASSIGN_OR_RETURN(std::vector<v1::Dataset> datasets, DatasetTable(store_).List({}));
  for (const v1::Dataset& ds : datasets) {
    if (ds.manifest_key().empty()) continue;
    keys.insert(ds.manifest_key());
    absl::StatusOr<std::string> bytes =
        files_->Read(ds.manifest_key(), options_.max_manifest_bytes);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat("cannot read the manifest of ", ds.name(),
                                       ", so its images cannot be told from unused files: ",
                                       bytes.status().message()));
    }
    ASSIGN_OR_RETURN(data::Dataset manifest, ParseDatasetManifest(*bytes, ds.manifest_key()));
    for (std::string& key : ImageKeysOf(manifest)) keys.insert(std::move(key));
  }
  return keys;
}

absl::StatusOr<bool> FileRefs::RemoveLocked(const std::string& key, bool with_grace) {
  if (pins_.count(key) > 0) return false;
  const absl::Time cutoff = with_grace && options_.grace > absl::ZeroDuration()
                                ? absl::Now() - options_.grace
                                : absl::InfiniteFuture();
  return files_->Remove(key, cutoff);
}

void FileRefs::Release(const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  // Read under the lock: a writer of this process either wrote its record
  // before (seen here) or pins after (and then finds the file gone and
  // writes it again).
  absl::StatusOr<std::set<std::string>> referenced = ReferencedKeys(/*checkpoints_only=*/false);
  if (!referenced.ok()) {
    logger_->Warning(
        "files of a deleted record are kept: references cannot be read",
        {{"files", absl::StrCat(keys.size())}, {"error", referenced.status().ToString()}});
    return;
  }
  std::set<std::string> done;
  for (const std::string& key : keys) {
    if (referenced->count(key) > 0 || !done.insert(key).second) continue;
    absl::StatusOr<bool> removed = RemoveLocked(key, /*with_grace=*/true);
    if (!removed.ok()) {
      logger_->Warning("cannot remove an unused file",
                       {{"key", key}, {"error", removed.status().ToString()}});
    }
  }
}

void FileRefs::ReleaseCheckpoint(const std::string& key) {
  if (key.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::set<std::string>> referenced = ReferencedKeys(/*checkpoints_only=*/true);
  if (!referenced.ok()) {
    logger_->Warning("an old checkpoint is kept: references cannot be read",
                     {{"key", key}, {"error", referenced.status().ToString()}});
    return;
  }
  if (referenced->count(key) > 0) return;
  // No grace: a checkpoint's writer records its key within the same
  // progress write (milliseconds), and each epoch would otherwise leave
  // one behind until the sweep.
  absl::StatusOr<bool> removed = RemoveLocked(key, /*with_grace=*/false);
  if (!removed.ok()) {
    logger_->Warning("cannot remove an old checkpoint",
                     {{"key", key}, {"error", removed.status().ToString()}});
  }
}

absl::StatusOr<FileSweepResult> FileRefs::Sweep() {
  std::lock_guard<std::mutex> lock(mu_);
  // List first: a file stored after the listing is not looked at, and one
  // stored before it but recorded after the reference scan is either
  // pinned (this process) or within the grace (others).
  ASSIGN_OR_RETURN(std::vector<store::StoredFile> stored, files_->List());
  ASSIGN_OR_RETURN(std::set<std::string> referenced, ReferencedKeys(/*checkpoints_only=*/false));
  FileSweepResult result;
  for (const store::StoredFile& f : stored) {
    if (referenced.count(f.key) > 0) continue;
    absl::StatusOr<bool> removed = RemoveLocked(f.key, /*with_grace=*/true);
    if (!removed.ok()) {
      logger_->Warning("cannot remove an unused file",
                       {{"key", f.key}, {"error", removed.status().ToString()}});
      continue;
    }
    if (*removed) {
      ++result.removed;
      result.removed_bytes += f.size_bytes;
    } else {
      ++result.kept_recent;
    }
  }
  return result;
}

}  // namespace provp::server
