// store::Store in memory, with the SQLite store's contract (the store
// contract suite runs against it too): ALREADY_EXISTS/NOT_FOUND, request-id
// lookups, state filters, the three orders, versions and compare-and-set
// Update, leases (Claim/RenewLease/ReleaseLease), per-job event ids from 1,
// and a job's events deleted with it. Nothing survives the object, so a
// "restart" in a test is a new server core over the same InMemoryStore.
// Thread-safe: one mutex, every call is atomic.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/store/store.h"

namespace provp::testing {

class InMemoryStore final : public store::Store {
 public:
  absl::Status Insert(store::Kind kind, const store::Record& record) override;
  absl::Status Put(store::Kind kind, const store::Record& record) override;
  absl::StatusOr<int64_t> Update(store::Kind kind, const store::Record& record,
                                 int64_t expected_version) override;
  absl::StatusOr<std::optional<store::Record>> Claim(store::Kind kind,
                                                     const store::ClaimOptions& options) override;
  absl::Status RenewLease(store::Kind kind, const std::string& id, const std::string& owner,
                          int64_t until_us) override;
  absl::Status ReleaseLease(store::Kind kind, const std::string& id,
                            const std::string& owner) override;
  absl::StatusOr<store::Record> Get(store::Kind kind, const std::string& id) override;
  absl::StatusOr<std::optional<store::Record>> FindByRequestId(
      store::Kind kind, const std::string& request_id) override;
  absl::StatusOr<std::vector<store::Record>> List(store::Kind kind,
                                                  const store::ListOptions& options) override;
  absl::StatusOr<int64_t> Count(store::Kind kind, const std::vector<std::string>& states) override;
  absl::Status Delete(store::Kind kind, const std::string& id) override;
  absl::StatusOr<int64_t> AppendEvent(
      const std::string& job_id, const std::function<std::string(int64_t)>& make_data) override;
  absl::StatusOr<std::vector<store::Event>> ListEvents(const std::string& job_id, int64_t after_id,
                                                       int64_t limit) override;

 private:
  std::mutex mu_;
  // Guarded by mu_. Records per kind, by id.
  std::map<store::Kind, std::map<std::string, store::Record>> tables_;
  std::map<std::string, std::vector<store::Event>> events_;
};

}  // namespace provp::testing
