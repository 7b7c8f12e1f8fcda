// Which files in the file store are still in use, and the one place that
// removes them. Records refer to content keys: a prompt set to its file
// (PromptSet.content_key), a dataset to its manifest (Dataset.manifest_key)
// and through it to its images, an unfinished job to its last checkpoint
// (TuningJob.checkpoint_key; a finished job refers to none). A file is
// removed once no record refers to it:
//   - at once, when a delete or a replaced checkpoint frees its keys
//     (Release / ReleaseCheckpoint), and
//   - by Sweep (at start and periodically) for what a crash left: files
//     stored whose record was never written, removals that did not happen.
// A file can be in use before any record names it (stored, record not yet
// written). In this process such keys are pinned from before the store
// until the record is written, and removals wait for pins; other processes
// sharing the store are covered by the grace: a file stored, or stored
// again, within `grace` is never removed (FileStore::Remove checks it
// atomically), so grace must exceed the longest store-to-record time of any
// writer (an upload's first image to its record). Alone on the store
// (SQLite) the grace is zero and removals are immediate.
// Thread-safe; removals and pinning are serialised by one mutex.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/store/file_store.h"
#include "core/store/store.h"
#include "server/state/logging.h"

namespace provp::server {

struct FileRefsOptions {
  // See above: zero when this process is the store's only user.
  absl::Duration grace = absl::ZeroDuration();
  // Largest manifest read while collecting references.
  uint64_t max_manifest_bytes = uint64_t{512} << 20;
};

struct FileSweepResult {
  int64_t removed = 0;
  uint64_t removed_bytes = 0;
  // Unreferenced but within the grace (or pinned): left for a later sweep.
  int64_t kept_recent = 0;
};

class FileRefs {
 public:
  // Keys this process stored and will soon name in a record; they are safe
  // from removal until the Pin is destroyed. Move-only.
  class Pin {
   public:
    Pin(Pin&& other) noexcept;
    Pin& operator=(Pin&&) = delete;
    Pin(const Pin&) = delete;
    ~Pin();
    // The keys stored under this pin so far.
    const std::vector<std::string>& keys() const { return keys_; }

   private:
    friend class FileRefs;
    explicit Pin(FileRefs* refs) : refs_(refs) {}
    FileRefs* refs_;
    std::vector<std::string> keys_;
  };

  FileRefs(store::Store* store, store::FileStore* files, Logger* logger, FileRefsOptions options);

  store::FileStore* files() const { return files_; }

  Pin NewPin() { return Pin(this); }
  // FileStore::Put / PutFile with the key pinned before the file can be seen
  // (one hashing pass: the store reports the key it computed).
  absl::StatusOr<std::string> Put(Pin& pin, absl::string_view bytes);
  absl::StatusOr<std::string> PutFile(Pin& pin, const std::string& path);

  // Removes those of `keys` that no record refers to (after the records
  // naming them were deleted). Failures are logged: a file left behind is
  // only space, and the next Sweep retries.
  void Release(const std::vector<std::string>& keys);
  // Release for a job's replaced or finished checkpoint: only unfinished
  // jobs refer to checkpoints (no other record holds checkpoint bytes: a
  // prompt-set import and an upload both validate their contents), so only
  // those are read, and there is no grace (pins still hold). The one case
  // this does not cover: two identical jobs on two replicas writing
  // byte-identical checkpoints within the same milliseconds; then one may
  // lose its recorded checkpoint, and a resume from it reports that and
  // starts over (JobRunner), losing time, not results.
  void ReleaseCheckpoint(const std::string& key);

  // Removes every stored file that no record refers to and that is older
  // than the grace. Fails (removing nothing) when a record's references
  // cannot be read in full, e.g. a damaged manifest.
  absl::StatusOr<FileSweepResult> Sweep();

 private:
  void Unpin(const std::vector<std::string>& keys);
  void PinKey(Pin& pin, const std::string& key);
  // Runs `write` (a FileStore Put or PutFile) with the key pinned as soon as
  // the store knows it; a failed write is dropped (DropFailedWrite).
  absl::StatusOr<std::string> PutPinned(
      Pin& pin, absl::FunctionRef<absl::StatusOr<std::string>(store::FileStore::KeyKnown)> write);
  // After a failed write of `key` under `pin`: unpins it and removes the
  // file if the write left it and nothing else holds it.
  void DropFailedWrite(Pin& pin, const std::string& key);
  // Keys named by records (all, or unfinished jobs' checkpoints only).
  absl::StatusOr<std::set<std::string>> ReferencedKeys(bool checkpoints_only) const;
  // Removes `key` unless pinned or (with_grace) stored within the grace.
  // Requires mu_.
  absl::StatusOr<bool> RemoveLocked(const std::string& key, bool with_grace);

  store::Store* const store_;
  store::FileStore* const files_;
  Logger* const logger_;
  const FileRefsOptions options_;

  std::mutex mu_;
  // Guarded by mu_: pin counts per key.
  std::map<std::string, int> pins_;
};

}  // namespace provp::server
