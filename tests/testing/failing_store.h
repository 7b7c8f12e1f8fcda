// A store::Store that passes calls to another store but fails the ones a
// test picks, for fault injection (LevelDB's ErrorEnv idea): the Nth call of
// an operation, or every call of it until Heal(). A failed call does not
// reach the wrapped store, so it changes nothing - as a write whose
// transaction did not commit. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/store/store.h"

namespace provp::testing {

enum class StoreOp {
  kInsert,
  kPut,
  kUpdate,
  kClaim,
  kRenewLease,
  kReleaseLease,
  kGet,
  kFindByRequestId,
  kList,
  kCount,
  kDelete,
  kAppendEvent,
  kListEvents,
};

class FailingStore final : public store::Store {
 public:
  // `base` must outlive this store.
  explicit FailingStore(store::Store* base) : base_(base) {}

  // The `n`th call of `op` from now on (1 = the next one) fails with
  // `error`; the calls around it pass.
  void FailNthCall(StoreOp op, int n,
                   absl::Status error = absl::UnavailableError("injected store failure"));
  // Every call of `op` fails with `error` until Heal().
  void FailEveryCall(StoreOp op,
                     absl::Status error = absl::UnavailableError("injected store failure"));
  // Stops all injected failures.
  void Heal();
  // Calls of `op` seen so far (failed ones included).
  int calls(StoreOp op) const;
  // Calls failed so far.
  int failures() const;

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
  struct Plan {
    int calls = 0;
    // Fail the call whose number reaches this (0 = none).
    int fail_at = 0;
    bool fail_every = false;
    absl::Status error;
  };
  // OK to go on, or the injected error for this call of `op`.
  absl::Status Check(StoreOp op);

  store::Store* const base_;
  mutable std::mutex mu_;
  // Guarded by mu_.
  std::map<StoreOp, Plan> plans_;
  int failures_ = 0;
};

}  // namespace provp::testing
