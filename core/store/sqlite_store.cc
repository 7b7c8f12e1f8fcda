// SQLite implementation of Store (store.h). One connection guarded by a
// mutex: the server's write rate (job progress, uploads) is tiny next to
// SQLite's, and WAL mode keeps each commit cheap. A non-default util::Env
// gets its own VFS shim (sqlite_env_vfs.h) so tests can fail commits.
// Thread-safe.
#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/store/sqlite_env_vfs.h"
#include "core/store/store.h"
#include "core/util/status_macros.h"

namespace provp::store {

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kDataset:
      return "dataset";
    case Kind::kJob:
      return "tuning job";
    case Kind::kPromptSet:
      return "prompt set";
    case Kind::kClassSet:
      return "class set";
  }
  return "record";
}

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

const char* TableName(Kind kind) {
  switch (kind) {
    case Kind::kDataset:
      return "datasets";
    case Kind::kJob:
      return "jobs";
    case Kind::kPromptSet:
      return "prompt_sets";
    case Kind::kClassSet:
      return "class_sets";
  }
  return "invalid";
}

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

  absl::Status Init() {
    std::string schema;
    for (Kind k : {Kind::kDataset, Kind::kJob, Kind::kPromptSet, Kind::kClassSet}) {
      absl::StrAppend(&schema, "CREATE TABLE IF NOT EXISTS ", TableName(k),
                      " (id TEXT PRIMARY KEY, state TEXT NOT NULL, request_id TEXT NOT NULL,"
                      " create_time_us INTEGER NOT NULL, data BLOB NOT NULL);",
                      "CREATE INDEX IF NOT EXISTS ", TableName(k), "_request ON ", TableName(k),
                      "(request_id);");
    }
    absl::StrAppend(&schema,
                    "CREATE TABLE IF NOT EXISTS events (job_id TEXT NOT NULL, id INTEGER NOT "
                    "NULL, data BLOB NOT NULL, PRIMARY KEY (job_id, id));");
    // busy_timeout first, so a lock held by another process is waited for
    // (5 s by default) before the start fails.
    // locking_mode=EXCLUSIVE + one write transaction: this connection holds
    // the database lock until it closes, so a second server on the same
    // data folder fails at start with "database is locked" instead of
    // interleaving writes. (With an exclusive lock, WAL needs no shm file.)
    RETURN_IF_ERROR(Exec("PRAGMA busy_timeout=" + std::to_string(busy_timeout_ms_) +
                         "; PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;"
                         " PRAGMA synchronous=NORMAL; BEGIN EXCLUSIVE; COMMIT;" +
                         schema));
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

  absl::Status Insert(Kind kind, const Record& r) override { return Write(kind, r, "INSERT INTO"); }
  absl::Status Put(Kind kind, const Record& r) override {
    return Write(kind, r, "INSERT OR REPLACE INTO");
  }

  absl::StatusOr<Record> Get(Kind kind, const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat("SELECT id, state, request_id, create_time_us, data FROM ",
                                   TableName(kind), " WHERE id = ?"));
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
    Statement st(db_, absl::StrCat("SELECT id, state, request_id, create_time_us, data FROM ",
                                   TableName(kind), " WHERE request_id = ? LIMIT 1"));
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
        absl::StrCat("SELECT id, state, request_id, create_time_us, data FROM ", TableName(kind),
                     StateClause(o.states), OrderClause(o.order), " LIMIT ? OFFSET ?");
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
    return r;
  }

  absl::Status Write(Kind kind, const Record& r, const char* verb) {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, absl::StrCat(verb, " ", TableName(kind),
                                   " (id, state, request_id, create_time_us, data)"
                                   " VALUES (?, ?, ?, ?, ?)"));
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
          " (another process holds its lock: is a second provp-server using this data "
          "folder?)";
    }
    return absl::Status(s.code(), absl::StrCat("database ", path, ": ", s.message(), advice));
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace provp::store
