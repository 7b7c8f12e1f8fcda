// Files that every replica must see (dataset images, prompt-set files,
// checkpoints), addressed by content: a key is "sha256:<64 hex>" of the
// bytes, so a key never names two contents and a reader can verify what it
// got. Writes are atomic: a reader sees a whole file or none. The first
// backend is a folder on a shared filesystem (a ReadWriteMany volume); an
// S3-compatible backend would implement the same interface (not built: no
// S3-compatible server can be run on the project's machines to test it;
// PUT is atomic there, LastModified is the stored time, and LocalPath
// would be a verified download cache).
// Which keys are still in use is the caller's business (records refer to
// keys); the store only offers the two primitives a safe collector needs:
// storing again refreshes a file's stored time, and Remove can refuse a file
// stored after a cutoff (another writer may be about to refer to it).
// Implementations are thread-safe and safe across processes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/util/env.h"

namespace provp::store {

struct StoredFile {
  std::string key;
  // When it was last stored (Put/PutFile of the same content refresh it).
  absl::Time stored_time;
  uint64_t size_bytes = 0;
};

class FileStore {
 public:
  virtual ~FileStore() = default;

  // Hears a write's key once the content is hashed and before the file can
  // be seen under it (before its stored time is refreshed or it is renamed
  // into place), so a caller can protect the key from collectors first
  // without hashing the content a second time (FileRefs pins it).
  using KeyKnown = absl::FunctionRef<void(const std::string& key)>;

  // Stores `bytes` and returns their key. Idempotent: storing the same bytes
  // again returns the same key, keeps the file and refreshes its stored time.
  absl::StatusOr<std::string> Put(absl::string_view bytes) {
    return DoPut(bytes, [](const std::string&) {});
  }
  absl::StatusOr<std::string> Put(absl::string_view bytes, KeyKnown key_known) {
    return DoPut(bytes, key_known);
  }
  // Stores a copy of the local file at `path` (streamed, hashed while
  // copying) and returns its key; NOT_FOUND when `path` cannot be read.
  absl::StatusOr<std::string> PutFile(const std::string& path) {
    return DoPutFile(path, [](const std::string&) {});
  }
  absl::StatusOr<std::string> PutFile(const std::string& path, KeyKnown key_known) {
    return DoPutFile(path, key_known);
  }
  // A local path holding the content, checked against the key first (the
  // whole file is hashed: DATA_LOSS when it differs). For the shared folder
  // it is the stored file itself; a remote backend would return a cache.
  // NOT_FOUND when the key is not stored, INVALID_ARGUMENT when it is not a
  // key.
  virtual absl::StatusOr<std::string> LocalPath(const std::string& key) = 0;
  // The content, checked against its key (DATA_LOSS when they differ);
  // RESOURCE_EXHAUSTED when it is larger than max_bytes.
  virtual absl::StatusOr<std::string> Read(const std::string& key, uint64_t max_bytes) = 0;
  virtual absl::StatusOr<bool> Contains(const std::string& key) = 0;
  // Every stored file (for a collector's sweep).
  virtual absl::StatusOr<std::vector<StoredFile>> List() = 0;
  // Removes the content unless it was stored (or stored again) at or after
  // `stored_before`; returns whether it was removed (false when absent or
  // kept). The check and the removal are one step for other writers: a Put
  // racing with Remove either refreshes the file before the check (kept) or
  // finds it gone and writes it again. Callers remove a key only once no
  // record refers to it.
  virtual absl::StatusOr<bool> Remove(const std::string& key,
                                      absl::Time stored_before = absl::InfiniteFuture()) = 0;

 private:
  // Put and PutFile; `key_known` is called at most once, and not at all when
  // the content could not be read.
  virtual absl::StatusOr<std::string> DoPut(absl::string_view bytes, KeyKnown key_known) = 0;
  virtual absl::StatusOr<std::string> DoPutFile(const std::string& path, KeyKnown key_known) = 0;
};

struct SharedDirOptions {
  // The folder (created when missing).
  std::string root;
  // Every write goes through it (fault injection in tests).
  util::Env* env = util::Env::Default();
  // At open, temporary files of interrupted writes older than this are
  // removed and files a Remove was interrupted on are put back (zero: all;
  // with other processes on the folder, longer than any write takes).
  absl::Duration leftover_min_age = absl::Hours(24);
};

// Content under `root`: root/sha256/<2 hex>/<64 hex>, written to root/tmp/
// first, fsynced, then renamed into place; Remove moves a file to
// root/trash/ before deciding, so a crash never loses a file in use.
absl::StatusOr<std::unique_ptr<FileStore>> OpenSharedDirFileStore(const SharedDirOptions& options);
absl::StatusOr<std::unique_ptr<FileStore>> OpenSharedDirFileStore(const std::string& root);

// "sha256:<hex>" of `bytes`.
std::string ContentKey(absl::string_view bytes);
// True for a well-formed key.
bool IsContentKey(absl::string_view key);

}  // namespace provp::store
