// Implementation of failing_store.h.
#include "tests/testing/failing_store.h"

#include "core/util/status_macros.h"

namespace provp::testing {

void FailingStore::FailNthCall(StoreOp op, int n, absl::Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  Plan& p = plans_[op];
  p.fail_at = p.calls + n;
  p.error = std::move(error);
}

void FailingStore::FailEveryCall(StoreOp op, absl::Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  Plan& p = plans_[op];
  p.fail_every = true;
  p.error = std::move(error);
}

void FailingStore::Heal() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [op, p] : plans_) {
    p.fail_at = 0;
    p.fail_every = false;
  }
}

int FailingStore::calls(StoreOp op) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plans_.find(op);
  return it == plans_.end() ? 0 : it->second.calls;
}

int FailingStore::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

absl::Status FailingStore::Check(StoreOp op) {
  std::lock_guard<std::mutex> lock(mu_);
  Plan& p = plans_[op];
  ++p.calls;
  if (p.fail_every || p.calls == p.fail_at) {
    ++failures_;
    return p.error;
  }
  return absl::OkStatus();
}

absl::Status FailingStore::Insert(store::Kind kind, const store::Record& record) {
  RETURN_IF_ERROR(Check(StoreOp::kInsert));
  return base_->Insert(kind, record);
}

absl::Status FailingStore::Put(store::Kind kind, const store::Record& record) {
  RETURN_IF_ERROR(Check(StoreOp::kPut));
  return base_->Put(kind, record);
}

absl::StatusOr<int64_t> FailingStore::Update(store::Kind kind, const store::Record& record,
                                             int64_t expected_version) {
  RETURN_IF_ERROR(Check(StoreOp::kUpdate));
  return base_->Update(kind, record, expected_version);
}

absl::StatusOr<std::optional<store::Record>> FailingStore::Claim(
    store::Kind kind, const store::ClaimOptions& options) {
  RETURN_IF_ERROR(Check(StoreOp::kClaim));
  return base_->Claim(kind, options);
}

absl::Status FailingStore::RenewLease(store::Kind kind, const std::string& id,
                                      const std::string& owner, int64_t until_us) {
  RETURN_IF_ERROR(Check(StoreOp::kRenewLease));
  return base_->RenewLease(kind, id, owner, until_us);
}

absl::Status FailingStore::ReleaseLease(store::Kind kind, const std::string& id,
                                        const std::string& owner) {
  RETURN_IF_ERROR(Check(StoreOp::kReleaseLease));
  return base_->ReleaseLease(kind, id, owner);
}

absl::StatusOr<store::Record> FailingStore::Get(store::Kind kind, const std::string& id) {
  RETURN_IF_ERROR(Check(StoreOp::kGet));
  return base_->Get(kind, id);
}

absl::StatusOr<std::optional<store::Record>> FailingStore::FindByRequestId(
    store::Kind kind, const std::string& request_id) {
  RETURN_IF_ERROR(Check(StoreOp::kFindByRequestId));
  return base_->FindByRequestId(kind, request_id);
}

absl::StatusOr<std::vector<store::Record>> FailingStore::List(store::Kind kind,
                                                              const store::ListOptions& options) {
  RETURN_IF_ERROR(Check(StoreOp::kList));
  return base_->List(kind, options);
}

absl::StatusOr<int64_t> FailingStore::Count(store::Kind kind,
                                            const std::vector<std::string>& states) {
  RETURN_IF_ERROR(Check(StoreOp::kCount));
  return base_->Count(kind, states);
}

absl::Status FailingStore::Delete(store::Kind kind, const std::string& id) {
  RETURN_IF_ERROR(Check(StoreOp::kDelete));
  return base_->Delete(kind, id);
}

absl::StatusOr<int64_t> FailingStore::AppendEvent(
    const std::string& job_id, const std::function<std::string(int64_t)>& make_data) {
  RETURN_IF_ERROR(Check(StoreOp::kAppendEvent));
  return base_->AppendEvent(job_id, make_data);
}

absl::StatusOr<std::vector<store::Event>> FailingStore::ListEvents(const std::string& job_id,
                                                                   int64_t after_id,
                                                                   int64_t limit) {
  RETURN_IF_ERROR(Check(StoreOp::kListEvents));
  return base_->ListEvents(job_id, after_id, limit);
}

}  // namespace provp::testing
