// SQLite implementation of Store (store.h). One connection guarded by a
// mutex: the server's write rate (job progress, uploads) is tiny next to
// SQLite's, and WAL mode keeps each commit cheap. Several processes may
// open one file (BEGIN IMMEDIATE serialises writers), which is how the
// contract tests race claims; production sharing goes through PostgreSQL.
// A non-default util::Env gets its own VFS shim (sqlite_env_vfs.h) so tests
// can fail commits.
// Thread-safe.
#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/store/schema.h"
#include "core/store/sqlite_env_vfs.h"
#include "core/store/store.h"
#include "core/util/status_macros.h"

namespace provp::store {

namespace {

// One mapping of SQLite result codes to Status codes: a full disk is
// RESOURCE_EXHAUSTED, a lock held elsewhere UNAVAILABLE, a damaged file
// DATA_LOSS, I/O errors and everything else INTERNAL. `detail` is
// sqlite3_errmsg (or sqlite3_exec's message).
absl::Status SqliteStatus(int rc, const std::string& detail) {
  const std::string msg = absl::StrCat("sqlite: ", detail);
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(detail);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    default:
      return absl::InternalError(msg);
  }
}

using internal::kRecordColumns;
using internal::TableName;

// RAII prepared statement with typed binds; errors carry SQLite's message.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status prepared() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return SqliteStatus(rc_, absl::StrCat("prepare: ", sqlite3_errmsg(db_)));
  }
  void Bind(int i, const std::string& s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void BindText(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  absl::Status Error(int rc) const { return SqliteStatus(rc, sqlite3_errmsg(db_)); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

class SqliteStore : public Store {
 public:
  SqliteStore(sqlite3* db, std::unique_ptr<SqliteEnvVfs> vfs, int busy_timeout_ms)
      : db_(db), vfs_(std::move(vfs)), busy_timeout_ms_(busy_timeout_ms) {}
  // The connection closes before its VFS unregisters (member order).
  ~SqliteStore() override { sqlite3_close(db_); }

  // Creates or migrates the schema to internal::kSchemaVersion, recorded in
  // PRAGMA user_version (0 = a file from before versioning, at version 1).
  absl::Status Init() {
    // busy_timeout first, so a lock held by another process (an open
    // sqlite3 shell transaction, say) is waited for before the start fails.
    RETURN_IF_ERROR(Exec(absl::StrCat("PRAGMA busy_timeout=", busy_timeout_ms_,
                                      "; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")));
    {
      std::lock_guard<std::mutex> lock(mu_);
      RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE"));
      absl::Status s = MigrateLocked();
      absl::Status end = ExecLocked(s.ok() ? "COMMIT" : "ROLLBACK");
      RETURN_IF_ERROR(s.ok() ? end : s);
    }
    return QuickCheck();
  }

  // PRAGMA quick_check: a damaged page is found at start instead of at the
  // first query that touches it (milliseconds for the server's few MB).
  absl::Status QuickCheck() {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, "PRAGMA quick_check");
    RETURN_IF_ERROR(st.prepared());
    int rc = st.Step();
    if (rc != SQLITE_ROW) return st.Error(rc);
    const std::string verdict = st.Blob(0);
    if (verdict != "ok") {
      return absl::DataLossError(absl::StrCat("sqlite: integrity check failed: ", verdict));
    }
    return absl::OkStatus();
  }

  absl::Status MigrateLocked() {
    Statement st(db_, "PRAGMA user_version");
    RETURN_IF_ERROR(st.prepared());
    if (int rc = st.Step(); rc != SQLITE_ROW) return st.Error(rc);
    const int64_t version = st.Int(0);
    if (version > internal::kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("schema version ", version, " is newer than this binary's (",
                       internal::kSchemaVersion, "); run a newer provp-server"));
    }
    if (version < 1) {
      std::string schema;
      for (Kind k : internal::kAllKinds) {
        absl::StrAppend(&schema, "CREATE TABLE IF NOT EXISTS ", TableName(k),
                        " (id TEXT PRIMARY KEY, state TEXT NOT NULL, request_id TEXT NOT NULL,"
                        " create_time_us INTEGER NOT NULL, data BLOB NOT NULL);",
                        "CREATE INDEX IF NOT EXISTS ", TableName(k), "_request ON ", TableName(k),
                        "(request_id);");
      }
      absl::StrAppend(&schema,
                      "CREATE TABLE IF NOT EXISTS events (job_id TEXT NOT NULL, id INTEGER NOT "
                      "NULL, data BLOB NOT NULL, PRIMARY KEY (job_id, id));");
      RETURN_IF_ERROR(ExecLocked(schema));
    }
    if (version < 2) {
      std::string alter;
      for (Kind k : internal::kAllKinds) {
        absl::StrAppend(&alter, "ALTER TABLE ", TableName(k),
                        " ADD COLUMN version INTEGER NOT NULL DEFAULT 1;", "ALTER TABLE ",
                        TableName(k), " ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';",
                        "ALTER TABLE ", TableName(k),
                        " ADD COLUMN lease_expires_us INTEGER NOT NULL DEFAULT 0;");
      }
      RETURN_IF_ERROR(ExecLocked(alter));
    }
    return ExecLocked(absl::StrCat("PRAGMA user_version = ", internal::kSchemaVersion));
  }

  absl::Status Insert(Kind kind, const Record& r) override { return Write(kind, r, ""); }
  absl::Status Put(Kind kind, const Record& r) override {
    return Write(kind, r,
                 " ON CONFLICT(id) DO UPDATE SET state = excluded.state, request_id ="
                 " excluded.request_id, create_time_us = excluded.create_time_us, data ="
                 " excluded.data, version = version + 1");
  }

  absl::StatusOr<int64_t> Update(Kind kind, const Record& r, int64_t expected_version) override {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat("UPDATE ", TableName(kind),
                                   " SET state = ?, request_id = ?, create_time_us = ?, data = ?,"
                                   " version = version + 1 WHERE id = ? AND version = ?"));
    RETURN_IF_ERROR(st.prepared());
    st.BindText(1, r.state);
    st.BindText(2, r.request_id);
    st.Bind(3, r.create_time_us);
    st.Bind(4, r.data);
    st.BindText(5, r.id);
    st.Bind(6, expected_version);
    int rc = st.Step();
    if (rc != SQLITE_DONE) return st.Error(rc);
    if (sqlite3_changes(db_) == 1) return expected_version + 1;
    ASSIGN_OR_RETURN(bool exists, ExistsLocked(kind, r.id));
    if (!exists)
      return absl::NotFoundError(absl::StrCat(KindName(kind), " '", r.id, "' not found"));
    return absl::AbortedError(
        absl::StrCat(KindName(kind), " '", r.id, "' changed since version ", expected_version));
  }

  absl::StatusOr<std::optional<Record>> Claim(Kind kind, const ClaimOptions& o) override {
    if (o.states.empty() || o.owner.empty()) {
      return absl::InvalidArgumentError("Claim needs states and an owner");
    }
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE"));
    auto body = [&]() -> absl::StatusOr<std::optional<Record>> {
      Statement st(db_, absl::StrCat("SELECT ", kRecordColumns, " FROM ", TableName(kind),
                                     StateClause(o.states),
                                     " AND (lease_owner = '' OR lease_expires_us <= ?)"
                                     " ORDER BY create_time_us, id LIMIT 1"));
      RETURN_IF_ERROR(st.prepared());
      int i = 1;
      for (const auto& state : o.states) st.BindText(i++, state);
      st.Bind(i, o.now_us);
      int rc = st.Step();
      if (rc == SQLITE_DONE) return std::optional<Record>();
      if (rc != SQLITE_ROW) return st.Error(rc);
      Record r = Row(st);
      Statement up(db_, absl::StrCat("UPDATE ", TableName(kind),
                                     " SET lease_owner = ?, lease_expires_us = ? WHERE id = ?"));
      RETURN_IF_ERROR(up.prepared());
      up.BindText(1, o.owner);
      up.Bind(2, o.lease_until_us);
      up.BindText(3, r.id);
      rc = up.Step();
      if (rc != SQLITE_DONE) return up.Error(rc);
      r.lease_owner = o.owner;
      r.lease_expires_us = o.lease_until_us;
      return std::optional<Record>(std::move(r));
    };
    absl::StatusOr<std::optional<Record>> out = body();
    absl::Status end = ExecLocked(out.ok() ? "COMMIT" : "ROLLBACK");
    if (!out.ok()) return out.status();
    RETURN_IF_ERROR(end);
    return out;
  }

  absl::Status RenewLease(Kind kind, const std::string& id, const std::string& owner,
                          int64_t until_us) override {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat("UPDATE ", TableName(kind),
                                   " SET lease_expires_us = ? WHERE id = ? AND lease_owner = ?"));
    RETURN_IF_ERROR(st.prepared());
    st.Bind(1, until_us);
    st.BindText(2, id);
    st.BindText(3, owner);
    int rc = st.Step();
    if (rc != SQLITE_DONE) return st.Error(rc);
    if (sqlite3_changes(db_) == 1) return absl::OkStatus();
    ASSIGN_OR_RETURN(bool exists, ExistsLocked(kind, id));
    if (!exists) return absl::NotFoundError(absl::StrCat(KindName(kind), " '", id, "' not found"));
    return absl::AbortedError(
        absl::StrCat("the lease on ", KindName(kind), " '", id, "' is no longer held by ", owner));
  }

  absl::Status ReleaseLease(Kind kind, const std::string& id, const std::string& owner) override {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat("UPDATE ", TableName(kind),
                                   " SET lease_owner = '', lease_expires_us = 0"
                                   " WHERE id = ? AND lease_owner = ?"));
    RETURN_IF_ERROR(st.prepared());
    st.BindText(1, id);
    st.BindText(2, owner);
    int rc = st.Step();
    if (rc != SQLITE_DONE) return st.Error(rc);
    if (sqlite3_changes(db_) == 1) return absl::OkStatus();
    ASSIGN_OR_RETURN(bool exists, ExistsLocked(kind, id));
    if (!exists) return absl::NotFoundError(absl::StrCat(KindName(kind), " '", id, "' not found"));
    return absl::OkStatus();
  }

  absl::StatusOr<Record> Get(Kind kind, const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(
        db_, absl::StrCat("SELECT ", kRecordColumns, " FROM ", TableName(kind), " WHERE id = ?"));
    RETURN_IF_ERROR(st.prepared());
    st.BindText(1, id);
    int rc = st.Step();
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(absl::StrCat(KindName(kind), " '", id, "' not found"));
    }
    if (rc != SQLITE_ROW) return st.Error(rc);
    return Row(st);
  }

  absl::StatusOr<std::optional<Record>> FindByRequestId(Kind kind,
                                                        const std::string& request_id) override {
    if (request_id.empty()) return std::optional<Record>();
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat("SELECT ", kRecordColumns, " FROM ", TableName(kind),
                                   " WHERE request_id = ? LIMIT 1"));
    RETURN_IF_ERROR(st.prepared());
    st.BindText(1, request_id);
    int rc = st.Step();
    if (rc == SQLITE_DONE) return std::optional<Record>();
    if (rc != SQLITE_ROW) return st.Error(rc);
    return std::optional<Record>(Row(st));
  }

  absl::StatusOr<std::vector<Record>> List(Kind kind, const ListOptions& o) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::string sql =
        absl::StrCat("SELECT ", kRecordColumns, " FROM ", TableName(kind), StateClause(o.states),
                     OrderClause(o.order), " LIMIT ? OFFSET ?");
    Statement st(db_, sql);
    RETURN_IF_ERROR(st.prepared());
    int i = 1;
    for (const auto& s : o.states) st.BindText(i++, s);
    st.Bind(i++, o.limit > 0 ? o.limit : int64_t{-1});
    st.Bind(i++, std::max<int64_t>(0, o.offset));
    std::vector<Record> out;
    for (int rc = st.Step();; rc = st.Step()) {
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return st.Error(rc);
      out.push_back(Row(st));
    }
    return out;
  }

  absl::StatusOr<int64_t> Count(Kind kind, const std::vector<std::string>& states) override {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat("SELECT COUNT(*) FROM ", TableName(kind), StateClause(states)));
    RETURN_IF_ERROR(st.prepared());
    int i = 1;
    for (const auto& s : states) st.BindText(i++, s);
    int rc = st.Step();
    if (rc != SQLITE_ROW) return st.Error(rc);
    return st.Int(0);
  }

  absl::Status Delete(Kind kind, const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE"));
    Statement st(db_, absl::StrCat("DELETE FROM ", TableName(kind), " WHERE id = ?"));
    absl::Status s = st.prepared();
    if (s.ok()) {
      st.BindText(1, id);
      int rc = st.Step();
      if (rc != SQLITE_DONE) {
        s = st.Error(rc);
      } else if (sqlite3_changes(db_) == 0) {
        s = absl::NotFoundError(absl::StrCat(KindName(kind), " '", id, "' not found"));
      }
    }
    if (s.ok() && kind == Kind::kJob) {
      Statement ev(db_, "DELETE FROM events WHERE job_id = ?");
      s = ev.prepared();
      if (s.ok()) {
        ev.BindText(1, id);
        int rc = ev.Step();
        if (rc != SQLITE_DONE) s = ev.Error(rc);
      }
    }
    absl::Status end = ExecLocked(s.ok() ? "COMMIT" : "ROLLBACK");
    return s.ok() ? end : s;
  }

  absl::StatusOr<int64_t> AppendEvent(
      const std::string& job_id, const std::function<std::string(int64_t)>& make_data) override {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE"));
    auto body = [&]() -> absl::StatusOr<int64_t> {
      Statement max(db_, "SELECT COALESCE(MAX(id), 0) FROM events WHERE job_id = ?");
      RETURN_IF_ERROR(max.prepared());
      max.BindText(1, job_id);
      int rc = max.Step();
      if (rc != SQLITE_ROW) return max.Error(rc);
      int64_t id = max.Int(0) + 1;
      Statement ins(db_, "INSERT INTO events (job_id, id, data) VALUES (?, ?, ?)");
      RETURN_IF_ERROR(ins.prepared());
      ins.BindText(1, job_id);
      ins.Bind(2, id);
      ins.Bind(3, make_data(id));
      rc = ins.Step();
      if (rc != SQLITE_DONE) return ins.Error(rc);
      return id;
    };
    absl::StatusOr<int64_t> id = body();
    absl::Status end = ExecLocked(id.ok() ? "COMMIT" : "ROLLBACK");
    if (!id.ok()) return id.status();
    RETURN_IF_ERROR(end);
    return id;
  }

  absl::StatusOr<std::vector<Event>> ListEvents(const std::string& job_id, int64_t after_id,
                                                int64_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_,
                 "SELECT id, data FROM events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?");
    RETURN_IF_ERROR(st.prepared());
    st.BindText(1, job_id);
    st.Bind(2, after_id);
    st.Bind(3, limit > 0 ? limit : int64_t{-1});
    std::vector<Event> out;
    for (int rc = st.Step();; rc = st.Step()) {
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return st.Error(rc);
      out.push_back(Event{st.Int(0), st.Blob(1)});
    }
    return out;
  }

 private:
  static std::string StateClause(const std::vector<std::string>& states) {
    if (states.empty()) return "";
    std::vector<std::string> marks(states.size(), "?");
    return absl::StrCat(" WHERE state IN (", absl::StrJoin(marks, ","), ")");
  }

  static const char* OrderClause(ListOptions::Order order) {
    switch (order) {
      case ListOptions::Order::kNewestFirst:
        return " ORDER BY create_time_us DESC, id DESC";
      case ListOptions::Order::kOldestFirst:
        return " ORDER BY create_time_us ASC, id ASC";
      case ListOptions::Order::kById:
        break;
    }
    return " ORDER BY id";
  }

  static Record Row(const Statement& st) {
    Record r;
    r.id = st.Blob(0);
    r.state = st.Blob(1);
    r.request_id = st.Blob(2);
    r.create_time_us = st.Int(3);
    r.data = st.Blob(4);
    r.version = st.Int(5);
    r.lease_owner = st.Blob(6);
    r.lease_expires_us = st.Int(7);
    return r;
  }

  absl::StatusOr<bool> ExistsLocked(Kind kind, const std::string& id) {
    Statement st(db_, absl::StrCat("SELECT 1 FROM ", TableName(kind), " WHERE id = ?"));
    RETURN_IF_ERROR(st.prepared());
    st.BindText(1, id);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return st.Error(rc);
  }

  // INSERT, with `on_conflict` appended (empty: a taken id is an error).
  absl::Status Write(Kind kind, const Record& r, const char* on_conflict) {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat("INSERT INTO ", TableName(kind),
                                   " (id, state, request_id, create_time_us, data, version)"
                                   " VALUES (?, ?, ?, ?, ?, 1)",
                                   on_conflict));
    RETURN_IF_ERROR(st.prepared());
    st.BindText(1, r.id);
    st.BindText(2, r.state);
    st.BindText(3, r.request_id);
    st.Bind(4, r.create_time_us);
    st.Bind(5, r.data);
    int rc = st.Step();
    if (rc == SQLITE_CONSTRAINT) {
      return absl::AlreadyExistsError(absl::StrCat(KindName(kind), " '", r.id, "' already exists"));
    }
    if (rc != SQLITE_DONE) return st.Error(rc);
    return absl::OkStatus();
  }

  absl::Status Exec(const std::string& sql) {
    std::lock_guard<std::mutex> lock(mu_);
    return ExecLocked(sql);
  }
  absl::Status ExecLocked(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      return SqliteStatus(sqlite3_extended_errcode(db_), msg);
    }
    return absl::OkStatus();
  }

  std::mutex mu_;
  sqlite3* db_;
  std::unique_ptr<SqliteEnvVfs> vfs_;  // null with the default Env
  int busy_timeout_ms_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, util::Env* env,
                                                       int busy_timeout_ms) {
  std::unique_ptr<SqliteEnvVfs> vfs;
  if (env != nullptr && env != util::Env::Default()) {
    ASSIGN_OR_RETURN(vfs, SqliteEnvVfs::Register(env));
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           vfs ? vfs->name() : nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open database ", path, ": ", msg));
  }
  auto store = std::make_unique<SqliteStore>(db, std::move(vfs), busy_timeout_ms);
  absl::Status s = store->Init();
  if (!s.ok()) {
    // Say what to do: these stop a start, and the operator has to act.
    std::string advice;
    if (s.code() == absl::StatusCode::kDataLoss) {
      advice =
          " (the file is damaged or not a provp database: restore it from a backup, or move "
          "it away to start with empty state)";
    } else if (s.code() == absl::StatusCode::kUnavailable) {
      advice =
          " (another process holds its write lock, e.g. an open sqlite3 shell transaction; "
          "stop it and start again)";
    }
    return absl::Status(s.code(), absl::StrCat("database ", path, ": ", s.message(), advice));
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace provp::store
