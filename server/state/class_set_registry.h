// Named class lists (with optional templates) that Classify can refer to
// instead of sending the names each time: validation against the Limits,
// idempotent creation by request id, and the records in the store.
// Thread-safe (the store is; no state of its own).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/store/store.h"
#include "core/util/clock.h"
#include "provp/v1/class_set.pb.h"
#include "server/state/limits.h"
#include "server/state/records.h"

namespace provp::server {

class ClassSetRegistry {
 public:
  ClassSetRegistry(store::Store* store, const util::Clock* clock, Limits limits);

  // ALREADY_EXISTS when the id is taken; the same request id returns the
  // set it created.
  absl::StatusOr<v1::ClassSet> Create(const v1::CreateClassSetRequest& request);
  absl::StatusOr<v1::ClassSet> Get(const std::string& id) const;
  absl::StatusOr<RecordPage<v1::ClassSet>> List(int32_t page_size,
                                                absl::string_view page_token) const;
  absl::Status Delete(const std::string& id);

 private:
  const RecordTable<v1::ClassSet> table_;
  const util::Clock* const clock_;
  const Limits limits_;
};

}  // namespace provp::server
