// PostgreSQL implementation of Store (store.h) on libpqxx 6.4, for replicas
// that share state. One connection per process guarded by a mutex (the
// server's write rate is small; a pool would only add idle connections);
// a broken connection is reopened once per call. Claims use SELECT ... FOR
// UPDATE SKIP LOCKED so concurrent claimers never wait on or share a row.
// Schema migrations run at open under an advisory lock. Thread-safe.
#include <algorithm>
#include <memory>
#include <mutex>
#include <utility>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/store/schema.h"
#include "core/store/store.h"
#include "core/util/status_macros.h"

namespace provp::store {
namespace {

using internal::kRecordColumns;
using internal::TableName;

// Arbitrary constant naming provp's migration lock among advisory locks.
constexpr int64_t kMigrationLockKey = 0x70726f7670;  // "provp"

// Each entry moves the schema from version i to i + 1 (i from 0). Never edit
// a released entry: add one.
std::vector<std::string> Migrations() {
  std::string v1;
  for (Kind k : internal::kAllKinds) {
    absl::StrAppend(&v1, "CREATE TABLE ", TableName(k),
                    " (id TEXT PRIMARY KEY, state TEXT NOT NULL, request_id TEXT NOT NULL,"
                    " create_time_us BIGINT NOT NULL, data BYTEA NOT NULL);",
                    "CREATE INDEX ", TableName(k), "_request ON ", TableName(k), "(request_id);",
                    "CREATE INDEX ", TableName(k), "_state ON ", TableName(k),
                    "(state, create_time_us);");
  }
  absl::StrAppend(&v1,
                  "CREATE TABLE events (job_id TEXT NOT NULL, id BIGINT NOT NULL,"
                  " data BYTEA NOT NULL, PRIMARY KEY (job_id, id));");
  std::string v2;
  for (Kind k : internal::kAllKinds) {
    absl::StrAppend(&v2, "ALTER TABLE ", TableName(k),
                    " ADD COLUMN version BIGINT NOT NULL DEFAULT 1,"
                    " ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '',"
                    " ADD COLUMN lease_expires_us BIGINT NOT NULL DEFAULT 0;");
  }
  return {v1, v2};
}

// A PostgreSQL text[] literal: {"a","b"} with quotes and backslashes escaped.
std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    out += absl::StrReplaceAll(values[i], {{"\\", "\\\\"}, {"\"", "\\\""}});
    out += '"';
  }
  return out + "}";
}

Record Row(const pqxx::row& row) {
  Record r;
  r.id = row[0].as<std::string>();
  r.state = row[1].as<std::string>();
  r.request_id = row[2].as<std::string>();
  r.create_time_us = row[3].as<int64_t>();
  r.data = pqxx::binarystring(row[4]).str();
  r.version = row[5].as<int64_t>();
  r.lease_owner = row[6].as<std::string>();
  r.lease_expires_us = row[7].as<int64_t>();
  return r;
}

absl::Status NotFound(Kind kind, const std::string& id) {
  return absl::NotFoundError(absl::StrCat(KindName(kind), " '", id, "' not found"));
}

class PostgresStore : public Store {
 public:
  explicit PostgresStore(std::string uri) : uri_(std::move(uri)) {}

  absl::Status Init() {
    return Run("migrate", [&](pqxx::work& tx) -> absl::Status {
      tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
      tx.exec0(
          "CREATE TABLE IF NOT EXISTS provp_schema_migrations (version INTEGER PRIMARY KEY,"
          " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
      const int64_t current =
          tx.exec1("SELECT COALESCE(MAX(version), 0) FROM provp_schema_migrations")[0]
              .as<int64_t>();
      const std::vector<std::string> migrations = Migrations();
      if (current > static_cast<int64_t>(migrations.size())) {
        return absl::FailedPreconditionError(
            absl::StrCat("database schema version ", current, " is newer than this binary's (",
                         migrations.size(), "); run a newer provp-server or another database"));
      }
      for (size_t v = current; v < migrations.size(); ++v) {
        tx.exec0(migrations[v]);
        tx.exec_params("INSERT INTO provp_schema_migrations (version) VALUES ($1)",
                       static_cast<int64_t>(v + 1));
      }
      return absl::OkStatus();
    });
  }

  absl::Status Insert(Kind kind, const Record& r) override {
    return Run("insert", [&](pqxx::work& tx) -> absl::Status {
      try {
        pqxx::subtransaction sub(tx, "insert");
        sub.exec_params(absl::StrCat("INSERT INTO ", TableName(kind),
                                     " (id, state, request_id, create_time_us, data, version)"
                                     " VALUES ($1, $2, $3, $4, $5, 1)"),
                        r.id, r.state, r.request_id, r.create_time_us, pqxx::binarystring(r.data));
        sub.commit();
      } catch (const pqxx::unique_violation&) {
        return absl::AlreadyExistsError(
            absl::StrCat(KindName(kind), " '", r.id, "' already exists"));
      }
      return absl::OkStatus();
    });
  }

  absl::Status Put(Kind kind, const Record& r) override {
    return Run("put", [&](pqxx::work& tx) -> absl::Status {
      const char* t = TableName(kind);
      tx.exec_params(absl::StrCat("INSERT INTO ", t,
                                  " (id, state, request_id, create_time_us, data, version)"
                                  " VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (id) DO UPDATE SET"
                                  " state = excluded.state, request_id = excluded.request_id,"
                                  " create_time_us = excluded.create_time_us,"
                                  " data = excluded.data, version = ",
                                  t, ".version + 1"),
                     r.id, r.state, r.request_id, r.create_time_us, pqxx::binarystring(r.data));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<int64_t> Update(Kind kind, const Record& r, int64_t expected_version) override {
    int64_t version = 0;
    RETURN_IF_ERROR(Run("update", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res = tx.exec_params(
          absl::StrCat("UPDATE ", TableName(kind),
                       " SET state = $1, request_id = $2, create_time_us = $3, data = $4,"
                       " version = version + 1 WHERE id = $5 AND version = $6 RETURNING version"),
          r.state, r.request_id, r.create_time_us, pqxx::binarystring(r.data), r.id,
          expected_version);
      if (res.size() == 1) {
        version = res[0][0].as<int64_t>();
        return absl::OkStatus();
      }
      if (!Exists(tx, kind, r.id)) return NotFound(kind, r.id);
      return absl::AbortedError(
          absl::StrCat(KindName(kind), " '", r.id, "' changed since version ", expected_version));
    }));
    return version;
  }

  absl::StatusOr<Record> Get(Kind kind, const std::string& id) override {
    Record out;
    RETURN_IF_ERROR(Run("get", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res = tx.exec_params(
          absl::StrCat("SELECT ", kRecordColumns, " FROM ", TableName(kind), " WHERE id = $1"), id);
      if (res.empty()) return NotFound(kind, id);
      out = Row(res[0]);
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::optional<Record>> FindByRequestId(Kind kind,
                                                        const std::string& request_id) override {
    std::optional<Record> out;
    if (request_id.empty()) return out;
    RETURN_IF_ERROR(Run("find", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res =
          tx.exec_params(absl::StrCat("SELECT ", kRecordColumns, " FROM ", TableName(kind),
                                      " WHERE request_id = $1 LIMIT 1"),
                         request_id);
      if (!res.empty()) out = Row(res[0]);
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<std::vector<Record>> List(Kind kind, const ListOptions& o) override {
    std::vector<Record> out;
    RETURN_IF_ERROR(Run("list", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res = tx.exec_params(
          absl::StrCat("SELECT ", kRecordColumns, " FROM ", TableName(kind),
                       " WHERE (cardinality($1::text[]) = 0 OR state = ANY($1::text[]))",
                       OrderClause(o.order),
                       " LIMIT NULLIF($2::bigint, 0) OFFSET $3"),  // LIMIT NULL: all
          TextArray(o.states), std::max<int64_t>(0, o.limit), std::max<int64_t>(0, o.offset));
      for (const auto& row : res) out.push_back(Row(row));
      return absl::OkStatus();
    }));
    return out;
  }

  absl::StatusOr<int64_t> Count(Kind kind, const std::vector<std::string>& states) override {
    int64_t n = 0;
    RETURN_IF_ERROR(Run("count", [&](pqxx::work& tx) -> absl::Status {
      n = tx.exec_params1(absl::StrCat("SELECT COUNT(*) FROM ", TableName(kind),
                                       " WHERE (cardinality($1::text[]) = 0 OR"
                                       " state = ANY($1::text[]))"),
                          TextArray(states))[0]
              .as<int64_t>();
      return absl::OkStatus();
    }));
    return n;
  }

  absl::Status Delete(Kind kind, const std::string& id) override {
    return Run("delete", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res = tx.exec_params(
          absl::StrCat("DELETE FROM ", TableName(kind), " WHERE id = $1 RETURNING id"), id);
      if (res.empty()) return NotFound(kind, id);
      if (kind == Kind::kJob) tx.exec_params("DELETE FROM events WHERE job_id = $1", id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::optional<Record>> Claim(Kind kind, const ClaimOptions& o) override {
    if (o.states.empty() || o.owner.empty()) {
      return absl::InvalidArgumentError("Claim needs states and an owner");
    }
    std::optional<Record> out;
    RETURN_IF_ERROR(Run("claim", [&](pqxx::work& tx) -> absl::Status {
      const char* t = TableName(kind);
      // SKIP LOCKED: a row another claimer is taking is passed over, not
      // waited for; FOR UPDATE re-checks the lease on the newest row version.
      pqxx::result res =
          tx.exec_params(absl::StrCat("UPDATE ", t,
                                      " SET lease_owner = $1, lease_expires_us = $2 WHERE id = ("
                                      "SELECT id FROM ",
                                      t,
                                      " WHERE state = ANY($3::text[]) AND"
                                      " (lease_owner = '' OR lease_expires_us <= $4)"
                                      " ORDER BY create_time_us, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                                      " RETURNING ",
                                      kRecordColumns),
                         o.owner, o.lease_until_us, TextArray(o.states), o.now_us);
      if (!res.empty()) out = Row(res[0]);
      return absl::OkStatus();
    }));
    return out;
  }

  absl::Status RenewLease(Kind kind, const std::string& id, const std::string& owner,
                          int64_t until_us) override {
    return Run("renew lease", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res = tx.exec_params(
          absl::StrCat(
              "UPDATE ", TableName(kind),
              " SET lease_expires_us = $1 WHERE id = $2 AND lease_owner = $3 RETURNING id"),
          until_us, id, owner);
      if (!res.empty()) return absl::OkStatus();
      if (!Exists(tx, kind, id)) return NotFound(kind, id);
      return absl::AbortedError(absl::StrCat("the lease on ", KindName(kind), " '", id,
                                             "' is no longer held by ", owner));
    });
  }

  absl::Status ReleaseLease(Kind kind, const std::string& id, const std::string& owner) override {
    return Run("release lease", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res =
          tx.exec_params(absl::StrCat("UPDATE ", TableName(kind),
                                      " SET lease_owner = '', lease_expires_us = 0"
                                      " WHERE id = $1 AND lease_owner = $2 RETURNING id"),
                         id, owner);
      if (res.empty() && !Exists(tx, kind, id)) return NotFound(kind, id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<int64_t> AppendEvent(
      const std::string& job_id, const std::function<std::string(int64_t)>& make_data) override {
    int64_t id = 0;
    RETURN_IF_ERROR(Run("append event", [&](pqxx::work& tx) -> absl::Status {
      // Replicas append to one job's log (the runner, a cancel elsewhere):
      // a per-job transaction lock makes MAX+1 safe.
      tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", job_id);
      id = tx.exec_params1("SELECT COALESCE(MAX(id), 0) + 1 FROM events WHERE job_id = $1",
                           job_id)[0]
               .as<int64_t>();
      tx.exec_params("INSERT INTO events (job_id, id, data) VALUES ($1, $2, $3)", job_id, id,
                     pqxx::binarystring(make_data(id)));
      return absl::OkStatus();
    }));
    return id;
  }

  absl::StatusOr<std::vector<Event>> ListEvents(const std::string& job_id, int64_t after_id,
                                                int64_t limit) override {
    std::vector<Event> out;
    RETURN_IF_ERROR(Run("list events", [&](pqxx::work& tx) -> absl::Status {
      pqxx::result res = tx.exec_params(
          "SELECT id, data FROM events WHERE job_id = $1 AND id > $2 ORDER BY id"
          " LIMIT NULLIF($3::bigint, 0)",
          job_id, after_id, std::max<int64_t>(0, limit));
      for (const auto& row : res) {
        out.push_back(Event{row[0].as<int64_t>(), pqxx::binarystring(row[1]).str()});
      }
      return absl::OkStatus();
    }));
    return out;
  }

 private:
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

  static bool Exists(pqxx::work& tx, Kind kind, const std::string& id) {
    return !tx.exec_params(absl::StrCat("SELECT 1 FROM ", TableName(kind), " WHERE id = $1"), id)
                .empty();
  }

  // Runs `body` in one transaction, committed when it returns OK and rolled
  // back otherwise. libpqxx exceptions become Status; a broken connection is
  // reopened and the call retried once (the transaction did not commit, or
  // the in-doubt case, which is reported as UNAVAILABLE).
  absl::Status Run(const char* what, const std::function<absl::Status(pqxx::work&)>& body) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int attempt = 0;; ++attempt) {
      try {
        if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(uri_);
        pqxx::work tx(*conn_);
        absl::Status s = body(tx);
        if (s.ok()) tx.commit();
        return s;
      } catch (const pqxx::in_doubt_error& e) {
        conn_.reset();
        return absl::UnavailableError(
            absl::StrCat("postgresql ", what, ": commit outcome unknown: ", e.what()));
      } catch (const pqxx::broken_connection& e) {
        conn_.reset();
        if (attempt >= 1) {
          return absl::UnavailableError(absl::StrCat("postgresql ", what, ": ", e.what()));
        }
      } catch (const pqxx::transaction_rollback& e) {
        return absl::AbortedError(absl::StrCat("postgresql ", what, ": ", e.what()));
      } catch (const std::exception& e) {
        return absl::InternalError(absl::StrCat("postgresql ", what, ": ", e.what()));
      }
    }
  }

  const std::string uri_;
  std::mutex mu_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& uri) {
  auto store = std::make_unique<PostgresStore>(uri);
  absl::Status s = store->Init();
  if (!s.ok()) {
    // The URI may hold a password: name the backend, never the URI.
    return absl::Status(s.code(), absl::StrCat("--store postgresql: ", s.message()));
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace provp::store
