// SqliteEnvVfs (sqlite_env_vfs.h): a shim file object that wraps the real
// unix file, checks the Env before mutating calls and forwards everything,
// including the WAL shared-memory methods, unchanged.
#include "core/store/sqlite_env_vfs.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace provp::store {
namespace {

struct ShimFile {
  sqlite3_file base;  // must be first: SQLite sees a sqlite3_file*
  util::Env* env;
  const char* path;    // owned by SQLite, valid until xClose
  sqlite3_file* real;  // lives right after this struct
};

ShimFile* Shim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }

// SQLITE_FULL for a full disk, the given I/O error code otherwise.
int Check(sqlite3_file* f, util::FileOp op, int io_error) {
  ShimFile* s = Shim(f);
  absl::Status st = s->env->CheckDatabaseStep(op, s->path ? s->path : "(temporary)");
  if (st.ok()) return SQLITE_OK;
  sqlite3_log(io_error, "provp env: %s", std::string(st.message()).c_str());
  return st.code() == absl::StatusCode::kResourceExhausted ? SQLITE_FULL : io_error;
}

int Close(sqlite3_file* f) {
  sqlite3_file* real = Shim(f)->real;
  return real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
}
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return Shim(f)->real->pMethods->xRead(Shim(f)->real, buf, n, off);
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (int rc = Check(f, util::FileOp::kDbWrite, SQLITE_IOERR_WRITE); rc != SQLITE_OK) return rc;
  return Shim(f)->real->pMethods->xWrite(Shim(f)->real, buf, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = Check(f, util::FileOp::kDbWrite, SQLITE_IOERR_TRUNCATE); rc != SQLITE_OK) return rc;
  return Shim(f)->real->pMethods->xTruncate(Shim(f)->real, size);
}
int Sync(sqlite3_file* f, int flags) {
  if (int rc = Check(f, util::FileOp::kDbSync, SQLITE_IOERR_FSYNC); rc != SQLITE_OK) return rc;
  return Shim(f)->real->pMethods->xSync(Shim(f)->real, flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Shim(f)->real->pMethods->xFileSize(Shim(f)->real, size);
}
int Lock(sqlite3_file* f, int level) {
  return Shim(f)->real->pMethods->xLock(Shim(f)->real, level);
}
int Unlock(sqlite3_file* f, int level) {
  return Shim(f)->real->pMethods->xUnlock(Shim(f)->real, level);
}
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Shim(f)->real->pMethods->xCheckReservedLock(Shim(f)->real, out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Shim(f)->real->pMethods->xFileControl(Shim(f)->real, op, arg);
}
int SectorSize(sqlite3_file* f) { return Shim(f)->real->pMethods->xSectorSize(Shim(f)->real); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Shim(f)->real->pMethods->xDeviceCharacteristics(Shim(f)->real);
}
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Shim(f)->real->pMethods->xShmMap(Shim(f)->real, region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Shim(f)->real->pMethods->xShmLock(Shim(f)->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Shim(f)->real->pMethods->xShmBarrier(Shim(f)->real); }
int ShmUnmap(sqlite3_file* f, int del) {
  return Shim(f)->real->pMethods->xShmUnmap(Shim(f)->real, del);
}
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return Shim(f)->real->pMethods->xFetch(Shim(f)->real, off, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Shim(f)->real->pMethods->xUnfetch(Shim(f)->real, off, p);
}

// Version 3 methods; versions the real file lacks are cut off per file.
const sqlite3_io_methods kMethods[4] = {
    {},
    {1, Close, Read, Write, Truncate, Sync, FileSize, Lock, Unlock, CheckReservedLock, FileControl,
     SectorSize, DeviceCharacteristics},
    {2, Close, Read, Write, Truncate, Sync, FileSize, Lock, Unlock, CheckReservedLock, FileControl,
     SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier, ShmUnmap},
    {3, Close, Read, Write, Truncate, Sync, FileSize, Lock, Unlock, CheckReservedLock, FileControl,
     SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier, ShmUnmap, Fetch, Unfetch},
};

sqlite3_vfs* Real(sqlite3_vfs* vfs) {
  return static_cast<SqliteEnvVfs::Targets*>(vfs->pAppData)->real;
}

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  ShimFile* s = Shim(f);
  s->base.pMethods = nullptr;
  s->env = static_cast<SqliteEnvVfs::Targets*>(vfs->pAppData)->env;
  s->path = name;
  s->real = reinterpret_cast<sqlite3_file*>(s + 1);
  sqlite3_vfs* real = Real(vfs);
  const int rc = real->xOpen(real, name, s->real, flags, out_flags);
  if (rc != SQLITE_OK || s->real->pMethods == nullptr) return rc;
  const int version = std::min(3, std::max(1, s->real->pMethods->iVersion));
  s->base.pMethods = &kMethods[version];
  return SQLITE_OK;
}
int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Real(vfs)->xDelete(Real(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Real(vfs)->xAccess(Real(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return Real(vfs)->xFullPathname(Real(vfs), name, n, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Real(vfs)->xDlOpen(Real(vfs), name); }
void DlError(sqlite3_vfs* vfs, int n, char* out) { Real(vfs)->xDlError(Real(vfs), n, out); }
void (*DlSym(sqlite3_vfs* vfs, void* h, const char* sym))(void) {
  return Real(vfs)->xDlSym(Real(vfs), h, sym);
}
void DlClose(sqlite3_vfs* vfs, void* h) { Real(vfs)->xDlClose(Real(vfs), h); }
int Randomness(sqlite3_vfs* vfs, int n, char* out) {
  return Real(vfs)->xRandomness(Real(vfs), n, out);
}
int Sleep(sqlite3_vfs* vfs, int us) { return Real(vfs)->xSleep(Real(vfs), us); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Real(vfs)->xCurrentTime(Real(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return Real(vfs)->xGetLastError ? Real(vfs)->xGetLastError(Real(vfs), n, out) : 0;
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Real(vfs)->xCurrentTimeInt64(Real(vfs), out);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteEnvVfs>> SqliteEnvVfs::Register(util::Env* env) {
  sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
  if (real == nullptr) return absl::InternalError("sqlite: no default VFS");
  std::unique_ptr<SqliteEnvVfs> v(new SqliteEnvVfs());
  v->name_ = absl::StrCat("provp-env-", reinterpret_cast<uintptr_t>(v.get()));
  sqlite3_vfs& s = v->vfs_;
  s.iVersion = 2;
  s.szOsFile = static_cast<int>(sizeof(ShimFile)) + real->szOsFile;
  s.mxPathname = real->mxPathname;
  s.zName = v->name_.c_str();
  v->targets_.env = env;
  v->targets_.real = real;
  s.pAppData = &v->targets_;
  s.xOpen = Open;
  s.xDelete = Delete;
  s.xAccess = Access;
  s.xFullPathname = FullPathname;
  s.xDlOpen = DlOpen;
  s.xDlError = DlError;
  s.xDlSym = DlSym;
  s.xDlClose = DlClose;
  s.xRandomness = Randomness;
  s.xSleep = Sleep;
  s.xCurrentTime = CurrentTime;
  s.xGetLastError = GetLastError;
  s.xCurrentTimeInt64 = CurrentTimeInt64;
  if (int rc = sqlite3_vfs_register(&s, /*makeDflt=*/0); rc != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("sqlite: cannot register VFS: ", sqlite3_errstr(rc)));
  }
  return v;
}

SqliteEnvVfs::~SqliteEnvVfs() { sqlite3_vfs_unregister(&vfs_); }

}  // namespace provp::store
