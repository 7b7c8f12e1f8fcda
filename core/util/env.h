// The file-system environment that every durable write goes through (the
// seam of LevelDB's Env): atomic whole-file writes, upload staging, prompt
// sets, checkpoints and the SQLite store's own writes. The default is plain
// POSIX; tests wrap it (tests/testing/fault_injection_env.h) to make any
// single step fail with ENOSPC or EIO and check that the caller returns a
// clear Status and leaves nothing half-written in view.
// Env objects are thread-safe; Default() lives for the whole process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::util {

// The mutating steps an Env performs (reads are never failed on purpose).
enum class FileOp {
  kCreateFile,  // open(O_CREAT|O_TRUNC) of a file to write
  kAppend,      // write(2) of file contents
  kSync,        // fsync of a written file
  kRename,      // rename(2), the commit point of an atomic write
  kRemove,      // unlink / recursive removal
  kCreateDir,   // mkdir (with parents)
  kSyncDir,     // fsync of a directory after a rename
  kDbWrite,     // a write or truncate SQLite makes to its database, WAL or journal
  kDbSync,      // an fsync SQLite makes
};

// "create", "append", "sync", ... for messages.
const char* FileOpName(FileOp op);

// An open file being written. Not thread-safe; one writer per file.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // fsync: after OK the bytes survive a power cut.
  virtual absl::Status Sync() = 0;
  // Closes the descriptor (also done by the destructor, ignoring errors).
  virtual absl::Status Close() = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX environment.
  static Env* Default();

  // Creates or truncates `path` for writing (mode 0644).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // rename(2): atomic replacement of `to` (files, or an empty/absent dir).
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Removes a file; NOT_FOUND when absent.
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Removes a file or a directory tree; OK when absent.
  virtual absl::Status RemoveAll(const std::string& path) = 0;
  // mkdir -p.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // fsync of a directory, making renames and creations in it durable.
  virtual absl::Status SyncDir(const std::string& path) = 0;

  // SQLite performs its own writes; the store's VFS shim asks the Env
  // before each database write or sync (op kDbWrite / kDbSync) and fails
  // that step when this returns an error. The default allows everything.
  virtual absl::Status CheckDatabaseStep(FileOp op, const std::string& path);
};

// Forwards every call to another Env; subclasses override what they change
// (LevelDB's EnvWrapper).
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  absl::Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  absl::Status RemoveAll(const std::string& path) override { return target_->RemoveAll(path); }
  absl::Status CreateDirs(const std::string& path) override { return target_->CreateDirs(path); }
  absl::Status SyncDir(const std::string& path) override { return target_->SyncDir(path); }
  absl::Status CheckDatabaseStep(FileOp op, const std::string& path) override {
    return target_->CheckDatabaseStep(op, path);
  }

 private:
  Env* target_;
};

// The Status for a failed system call on `path`: ENOENT -> NOT_FOUND,
// EACCES/EPERM -> PERMISSION_DENIED, ENOSPC/EDQUOT -> RESOURCE_EXHAUSTED
// ("no space left on device"), anything else (EIO, ...) -> INTERNAL; the
// message is "<what> <path>: <strerror>".
absl::Status ErrnoToStatus(int err, absl::string_view what, absl::string_view path);

}  // namespace provp::util
