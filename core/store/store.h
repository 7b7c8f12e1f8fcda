// The server's durable state behind one interface: datasets, tuning jobs,
// prompt-set metadata and class sets as opaque records (the server stores
// serialized protos), plus an append-only event log per job. Records carry
// the few columns the server queries on (state, request id, creation time),
// a version for compare-and-set updates and a lease (owner + expiry) that
// lets several replicas share one job queue. Two backends: SQLite (the
// embedded default, one process) and PostgreSQL (shared by replicas).
// Implementations are thread-safe; every call is one transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/util/env.h"

namespace provp::store {

// The record tables.
enum class Kind { kDataset, kJob, kPromptSet, kClassSet };

const char* KindName(Kind kind);

struct Record {
  // Unique within its kind.
  std::string id;
  // Queryable state name ("QUEUED", "ACTIVE", ...); free text to the store.
  std::string state;
  // Idempotency key of the create request; empty = none.
  std::string request_id;
  // Microseconds since the epoch; orders List.
  int64_t create_time_us = 0;
  // The payload (a serialized proto).
  std::string data;
  // Set by the store: 1 on creation, +1 on every write of state or data.
  // Update() compares it; Insert/Put ignore the caller's value.
  int64_t version = 0;
  // Who holds the record's lease ("" = nobody) and until when (microseconds
  // since the epoch). Written only by Claim/RenewLease/ReleaseLease.
  std::string lease_owner;
  int64_t lease_expires_us = 0;
};

struct ListOptions {
  // Rows to skip (page tokens are offsets).
  int64_t offset = 0;
  // Rows to return at most; <= 0 means all.
  int64_t limit = 0;
  // Only these states; empty = any.
  std::vector<std::string> states;
  enum class Order { kById, kNewestFirst, kOldestFirst };
  // kNewestFirst/kOldestFirst order by create time, then id.
  Order order = Order::kById;
};

struct ClaimOptions {
  // Claimable states (e.g. QUEUED, RUNNING); at least one.
  std::vector<std::string> states;
  // The claimer's identity (one per process); not empty.
  std::string owner;
  // The claimer's clock: a lease is free when it has no owner or
  // lease_expires_us <= now_us.
  int64_t now_us = 0;
  // Expiry of the new lease.
  int64_t lease_until_us = 0;
};

struct Event {
  // Per job, 1, 2, 3, ...
  int64_t id = 0;
  std::string data;
};

// Update, Claim, RenewLease and ReleaseLease are implemented by both
// backends; their base versions return UNIMPLEMENTED so that test doubles
// without versions or leases need not define them.
class Store {
 public:
  virtual ~Store() = default;

  // Creates a record; ALREADY_EXISTS when the id is taken.
  virtual absl::Status Insert(Kind kind, const Record& record) = 0;
  // Creates or replaces a record's state, request id, create time and data;
  // an existing lease is kept.
  virtual absl::Status Put(Kind kind, const Record& record) = 0;
  // Compare-and-set: like Put on an existing record, but only while its
  // version is still `expected_version`. Returns the new version; ABORTED
  // when another writer came first (re-read and retry), NOT_FOUND when
  // absent.
  virtual absl::StatusOr<int64_t> Update(Kind kind, const Record& record, int64_t expected_version);
  // NOT_FOUND naming kind and id when absent.
  virtual absl::StatusOr<Record> Get(Kind kind, const std::string& id) = 0;
  // The record created with this request id, if any.
  virtual absl::StatusOr<std::optional<Record>> FindByRequestId(Kind kind,
                                                                const std::string& request_id) = 0;
  virtual absl::StatusOr<std::vector<Record>> List(Kind kind, const ListOptions& options) = 0;
  // Number of records in the given states (empty = all).
  virtual absl::StatusOr<int64_t> Count(Kind kind, const std::vector<std::string>& states) = 0;
  // Deletes the record (and, for jobs, its events); NOT_FOUND when absent.
  virtual absl::Status Delete(Kind kind, const std::string& id) = 0;

  // Takes the lease of the oldest record (create time, then id) in one of
  // `options.states` whose lease is free or expired, and returns it with the
  // new lease; nullopt when there is none. Atomic across processes: while a
  // lease is live no other caller gets the record (PostgreSQL: SELECT ...
  // FOR UPDATE SKIP LOCKED; SQLite: one writer at a time).
  virtual absl::StatusOr<std::optional<Record>> Claim(Kind kind, const ClaimOptions& options);
  // Moves the lease's expiry to `until_us` while `owner` holds it (even if
  // it expired meanwhile and nobody claimed it); ABORTED when another owner
  // holds it or it was released, NOT_FOUND when the record is gone.
  virtual absl::Status RenewLease(Kind kind, const std::string& id, const std::string& owner,
                                  int64_t until_us);
  // Clears the lease if `owner` holds it (no-op otherwise); NOT_FOUND when
  // the record is gone.
  virtual absl::Status ReleaseLease(Kind kind, const std::string& id, const std::string& owner);

  // Appends an event to a job's log. `make_data` receives the new event id
  // (so the payload can contain it) and returns the payload. Returns the id.
  virtual absl::StatusOr<int64_t> AppendEvent(
      const std::string& job_id, const std::function<std::string(int64_t)>& make_data) = 0;
  // Events with id > after_id, oldest first, at most `limit` (<= 0 = all).
  virtual absl::StatusOr<std::vector<Event>> ListEvents(const std::string& job_id, int64_t after_id,
                                                        int64_t limit) = 0;
};

// SQLite (WAL) database at `path`, created with its schema when missing and
// migrated to this binary's schema version (PRAGMA user_version);
// FAILED_PRECONDITION when the file has a newer version. Survives process
// crashes: every call commits before it returns. Its writes and fsyncs are
// checked with `env` (tests fail them on purpose). Errors:
// RESOURCE_EXHAUSTED for a full disk, UNAVAILABLE when another process
// holds the write lock for longer than busy_timeout_ms, DATA_LOSS for a
// damaged or foreign file (quick_check at open); messages name the file and
// say what to do.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       util::Env* env = util::Env::Default(),
                                                       int busy_timeout_ms = 5000);

// PostgreSQL at a libpq connection URI ("postgresql://user@host:port/db").
// Applies the schema migrations this binary knows at start (serialised
// across replicas by an advisory lock) and refuses (FAILED_PRECONDITION) a
// database migrated by a newer binary; UNAVAILABLE when it cannot connect.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& uri);

// `--store`: "" opens SQLite at `default_sqlite_path`; "sqlite:PATH" SQLite
// at PATH; "postgresql://..." or "postgres://..." PostgreSQL. Anything else
// is INVALID_ARGUMENT. `env` is SQLite's fault seam (PostgreSQL does its
// I/O on the database server and does not take one).
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& spec,
                                                 const std::string& default_sqlite_path,
                                                 util::Env* env = util::Env::Default());
// `spec` for logs: the password of a URI replaced by "***".
std::string RedactStoreSpec(const std::string& spec);
// True when `spec` names a store that several processes may share.
bool IsSharedStore(const std::string& spec);
// The schema version this binary writes (both backends).
int SchemaVersion();

}  // namespace provp::store
