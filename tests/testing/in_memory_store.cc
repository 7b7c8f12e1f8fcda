// Implementation of in_memory_store.h.
#include "tests/testing/in_memory_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace provp::testing {
namespace {

bool InStates(const store::Record& r, const std::vector<std::string>& states) {
  return states.empty() || std::find(states.begin(), states.end(), r.state) != states.end();
}

}  // namespace

absl::Status InMemoryStore::Insert(store::Kind kind, const store::Record& record) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& table = tables_[kind];
  if (table.count(record.id)) {
    return absl::AlreadyExistsError(
        absl::StrCat(store::KindName(kind), " '", record.id, "' already exists"));
  }
  store::Record& r = table[record.id] = record;
  // The store owns versions and leases, whatever the caller passed.
  r.version = 1;
  r.lease_owner.clear();
  r.lease_expires_us = 0;
  return absl::OkStatus();
}

absl::Status InMemoryStore::Put(store::Kind kind, const store::Record& record) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& table = tables_[kind];
  auto it = table.find(record.id);
  if (it == table.end()) {
    store::Record& r = table[record.id] = record;
    r.version = 1;
    r.lease_owner.clear();
    r.lease_expires_us = 0;
    return absl::OkStatus();
  }
  // Replaces the columns and data; the lease is kept.
  store::Record& r = it->second;
  r.state = record.state;
  r.request_id = record.request_id;
  r.create_time_us = record.create_time_us;
  r.data = record.data;
  ++r.version;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InMemoryStore::Update(store::Kind kind, const store::Record& record,
                                              int64_t expected_version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& table = tables_[kind];
  auto it = table.find(record.id);
  if (it == table.end()) {
    return absl::NotFoundError(absl::StrCat(store::KindName(kind), " '", record.id, "' not found"));
  }
  store::Record& r = it->second;
  if (r.version != expected_version) {
    return absl::AbortedError(absl::StrCat(store::KindName(kind), " '", record.id,
                                           "' changed since version ", expected_version));
  }
  r.state = record.state;
  r.request_id = record.request_id;
  r.create_time_us = record.create_time_us;
  r.data = record.data;
  return ++r.version;
}

absl::StatusOr<std::optional<store::Record>> InMemoryStore::Claim(store::Kind kind,
                                                                  const store::ClaimOptions& o) {
  if (o.states.empty() || o.owner.empty()) {
    return absl::InvalidArgumentError("Claim needs states and an owner");
  }
  std::lock_guard<std::mutex> lock(mu_);
  store::Record* best = nullptr;
  for (auto& [id, r] : tables_[kind]) {
    if (!InStates(r, o.states)) continue;
    if (!r.lease_owner.empty() && r.lease_expires_us > o.now_us) continue;
    // Oldest first (create time, then id; the map iterates by id).
    if (best == nullptr || r.create_time_us < best->create_time_us) best = &r;
  }
  if (best == nullptr) return std::optional<store::Record>();
  best->lease_owner = o.owner;
  best->lease_expires_us = o.lease_until_us;
  return std::optional<store::Record>(*best);
}

absl::Status InMemoryStore::RenewLease(store::Kind kind, const std::string& id,
                                       const std::string& owner, int64_t until_us) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& table = tables_[kind];
  auto it = table.find(id);
  if (it == table.end()) {
    return absl::NotFoundError(absl::StrCat(store::KindName(kind), " '", id, "' not found"));
  }
  if (it->second.lease_owner != owner) {
    return absl::AbortedError(absl::StrCat("the lease on ", store::KindName(kind), " '", id,
                                           "' is no longer held by ", owner));
  }
  it->second.lease_expires_us = until_us;
  return absl::OkStatus();
}

absl::Status InMemoryStore::ReleaseLease(store::Kind kind, const std::string& id,
                                         const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& table = tables_[kind];
  auto it = table.find(id);
  if (it == table.end()) {
    return absl::NotFoundError(absl::StrCat(store::KindName(kind), " '", id, "' not found"));
  }
  if (it->second.lease_owner == owner) {
    it->second.lease_owner.clear();
    it->second.lease_expires_us = 0;
  }
  return absl::OkStatus();
}

absl::StatusOr<store::Record> InMemoryStore::Get(store::Kind kind, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& table = tables_[kind];
  auto it = table.find(id);
  if (it == table.end()) {
    return absl::NotFoundError(absl::StrCat(store::KindName(kind), " '", id, "' not found"));
  }
  return it->second;
}

absl::StatusOr<std::optional<store::Record>> InMemoryStore::FindByRequestId(
    store::Kind kind, const std::string& request_id) {
  if (request_id.empty()) return std::optional<store::Record>();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, r] : tables_[kind]) {
    if (r.request_id == request_id) return std::optional<store::Record>(r);
  }
  return std::optional<store::Record>();
}

absl::StatusOr<std::vector<store::Record>> InMemoryStore::List(store::Kind kind,
                                                               const store::ListOptions& o) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<store::Record> rows;
  for (const auto& [id, r] : tables_[kind]) {
    if (InStates(r, o.states)) rows.push_back(r);
  }
  // The map already orders by id.
  using Order = store::ListOptions::Order;
  if (o.order == Order::kNewestFirst) {
    std::stable_sort(rows.begin(), rows.end(), [](const store::Record& a, const store::Record& b) {
      return a.create_time_us != b.create_time_us ? a.create_time_us > b.create_time_us
                                                  : a.id > b.id;
    });
  } else if (o.order == Order::kOldestFirst) {
    std::stable_sort(rows.begin(), rows.end(), [](const store::Record& a, const store::Record& b) {
      return a.create_time_us != b.create_time_us ? a.create_time_us < b.create_time_us
                                                  : a.id < b.id;
    });
  }
  const size_t begin =
      std::min<size_t>(rows.size(), static_cast<size_t>(std::max<int64_t>(0, o.offset)));
  const size_t end = o.limit > 0
                         ? std::min<size_t>(rows.size(), begin + static_cast<size_t>(o.limit))
                         : rows.size();
  return std::vector<store::Record>(rows.begin() + begin, rows.begin() + end);
}

absl::StatusOr<int64_t> InMemoryStore::Count(store::Kind kind,
                                             const std::vector<std::string>& states) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [id, r] : tables_[kind]) n += InStates(r, states) ? 1 : 0;
  return n;
}

absl::Status InMemoryStore::Delete(store::Kind kind, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tables_[kind].erase(id) == 0) {
    return absl::NotFoundError(absl::StrCat(store::KindName(kind), " '", id, "' not found"));
  }
  if (kind == store::Kind::kJob) events_.erase(id);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InMemoryStore::AppendEvent(
    const std::string& job_id, const std::function<std::string(int64_t)>& make_data) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& log = events_[job_id];
  const int64_t id = log.empty() ? 1 : log.back().id + 1;
  log.push_back(store::Event{id, make_data(id)});
  return id;
}

absl::StatusOr<std::vector<store::Event>> InMemoryStore::ListEvents(const std::string& job_id,
                                                                    int64_t after_id,
                                                                    int64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<store::Event> out;
  auto it = events_.find(job_id);
  if (it == events_.end()) return out;
  for (const store::Event& e : it->second) {
    if (e.id <= after_id) continue;
    if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
    out.push_back(e);
  }
  return out;
}

}  // namespace provp::testing
