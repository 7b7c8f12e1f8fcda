// A SQLite VFS that routes the database's writes past a util::Env: it
// forwards every call to SQLite's default (unix) VFS, but asks
// Env::CheckDatabaseStep before each write, truncate and fsync, so a test's
// fault-injection Env can make a commit fail with ENOSPC (SQLITE_FULL) or
// EIO (SQLITE_IOERR) at any step. One VFS per Env, registered under a name
// unique to it. Thread-safe (SQLite serialises calls per file; the Env is
// thread-safe).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/util/env.h"

namespace provp::store {

class SqliteEnvVfs {
 public:
  // Registers the VFS (not as the default). The Env must outlive it.
  static absl::StatusOr<std::unique_ptr<SqliteEnvVfs>> Register(util::Env* env);
  // Unregisters it; every connection using it must be closed first.
  ~SqliteEnvVfs();
  SqliteEnvVfs(const SqliteEnvVfs&) = delete;
  SqliteEnvVfs& operator=(const SqliteEnvVfs&) = delete;

  // The name to pass to sqlite3_open_v2.
  const char* name() const { return name_.c_str(); }

  // What the VFS callbacks reach through sqlite3_vfs::pAppData.
  struct Targets {
    util::Env* env = nullptr;
    sqlite3_vfs* real = nullptr;  // SQLite's default VFS at registration
  };

 private:
  SqliteEnvVfs() = default;
  std::string name_;
  Targets targets_;
  sqlite3_vfs vfs_{};
};

}  // namespace provp::store
