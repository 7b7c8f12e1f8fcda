// Files that every replica must see (dataset images, prompt-set files,
// checkpoints), addressed by content: a key is "sha256:<64 hex>" of the
// bytes, so a key never names two contents and a reader can verify what it
// got. Writes are atomic: a reader sees a whole file or none. The first
// backend is a folder on a shared filesystem (a ReadWriteMany volume); an
// S3-compatible backend would implement the same interface (not built: no
// S3-compatible server can be run on the project's machines to test it).
// Implementations are thread-safe and safe across processes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::store {

class FileStore {
 public:
  virtual ~FileStore() = default;

  // Stores `bytes` and returns their key. Idempotent: storing the same bytes
  // again returns the same key and leaves the file as it is.
  virtual absl::StatusOr<std::string> Put(absl::string_view bytes) = 0;
  // Stores a copy of the local file at `path` (streamed, hashed while
  // copying) and returns its key.
  virtual absl::StatusOr<std::string> PutFile(const std::string& path) = 0;
  // A local path to read the content from (the shared file itself; a cache
  // for a remote backend). NOT_FOUND when the key is not stored,
  // INVALID_ARGUMENT when it is not a key.
  virtual absl::StatusOr<std::string> LocalPath(const std::string& key) = 0;
  // The content, checked against its key (DATA_LOSS when they differ).
  virtual absl::StatusOr<std::string> Read(const std::string& key, uint64_t max_bytes) = 0;
  virtual absl::StatusOr<bool> Contains(const std::string& key) = 0;
  // Removes the content; OK when it is already absent. Callers remove a key
  // only once no record refers to it.
  virtual absl::Status Remove(const std::string& key) = 0;
};

// Content under `root` (created when missing): root/sha256/<2 hex>/<64 hex>,
// written to root/tmp/ first, fsynced, then renamed into place.
absl::StatusOr<std::unique_ptr<FileStore>> OpenSharedDirFileStore(const std::string& root);

// "sha256:<hex>" of `bytes`.
std::string ContentKey(absl::string_view bytes);

}  // namespace provp::store
