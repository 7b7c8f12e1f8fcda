// The server's durable state behind one interface: datasets, tuning jobs,
// prompt-set metadata and class sets as opaque records (the server stores
// serialized protos), plus an append-only event log per job. Records carry
// the few columns the server queries on (state, request id, creation time).
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

struct Event {
  // Per job, 1, 2, 3, ...
  int64_t id = 0;
  std::string data;
};

class Store {
 public:
  virtual ~Store() = default;

  // Creates a record; ALREADY_EXISTS when the id is taken.
  virtual absl::Status Insert(Kind kind, const Record& record) = 0;
  // Creates or replaces a record.
  virtual absl::Status Put(Kind kind, const Record& record) = 0;
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

  // Appends an event to a job's log. `make_data` receives the new event id
  // (so the payload can contain it) and returns the payload. Returns the id.
  virtual absl::StatusOr<int64_t> AppendEvent(
      const std::string& job_id, const std::function<std::string(int64_t)>& make_data) = 0;
  // Events with id > after_id, oldest first, at most `limit` (<= 0 = all).
  virtual absl::StatusOr<std::vector<Event>> ListEvents(const std::string& job_id, int64_t after_id,
                                                        int64_t limit) = 0;
};

// SQLite (WAL) database at `path`, created with its schema when missing.
// Survives process crashes: every call commits before it returns. Its
// writes and fsyncs are checked with `env` (tests fail them on purpose).
// The store holds the database's lock for its lifetime (one server per
// data folder). Errors: RESOURCE_EXHAUSTED for a full disk, UNAVAILABLE
// when another process holds the lock (after busy_timeout_ms), DATA_LOSS
// for a damaged or foreign file (quick_check at open); messages name the
// file and say what to do.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       util::Env* env = util::Env::Default(),
                                                       int busy_timeout_ms = 5000);

}  // namespace provp::store
