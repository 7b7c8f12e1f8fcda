// Typed records over store::Store: one table (Kind) of one proto message,
// with the API's error model applied in one place - Get answers NOT_FOUND
// with ResourceInfo, Insert ALREADY_EXISTS with ResourceInfo, a payload that
// does not parse DATA_LOSS naming the record, and listing pages with
// decimal-offset page tokens and a state filter. The store stays untyped
// (core/store/store.h), so a second backend implements only that interface.
// Thread-safe as the store is; a RecordTable holds no state of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/store/store.h"

namespace provp::server {

// The queryable columns stored beside a payload.
struct RecordColumns {
  // State name ("QUEUED", "ACTIVE", ...).
  std::string state;
  // Idempotency key of the create request; empty = none.
  std::string request_id;
  // Microseconds since the epoch; orders listings.
  int64_t create_time_us = 0;
};

// Which records a listing returns, in which order.
struct RecordFilter {
  // Only these states; empty = any.
  std::vector<std::string> states;
  store::ListOptions::Order order = store::ListOptions::Order::kById;
};

template <typename M>
struct RecordPage {
  std::vector<M> items;
  // Token of the next page; empty at the end.
  std::string next_page_token;
};

// Page tokens are decimal offsets; INVALID_ARGUMENT (INVALID_PAGE_TOKEN)
// for anything else.
absl::StatusOr<int64_t> ParsePageToken(absl::string_view token);
// page_size <= 0 -> default_size; at most 1000.
int64_t ClampPageSize(int32_t page_size, int64_t default_size);

// The untyped half (one copy of the logic for every message type).
class RecordTableBase {
 public:
  // `collection` names resources ("promptSets"), `type_name` is the
  // ResourceInfo type ("provp.v1.PromptSet").
  RecordTableBase(store::Store* store, store::Kind kind, std::string collection,
                  std::string type_name);

  // "<collection>/<id>".
  std::string NameOf(absl::string_view id) const;
  // NOT_FOUND (with ResourceInfo) for this table's record `id`.
  absl::Status NotFoundError(absl::string_view id) const;

  // false when absent; store errors are returned, never read as "absent".
  absl::StatusOr<bool> Exists(const std::string& id) const;
  absl::StatusOr<int64_t> Count(const std::vector<std::string>& states = {}) const;
  // NOT_FOUND (with ResourceInfo) when absent.
  absl::Status Delete(const std::string& id) const;

 protected:
  absl::StatusOr<store::Record> GetRecord(const std::string& id) const;
  absl::Status Parse(const store::Record& record, google::protobuf::MessageLite* out) const;
  absl::Status InsertRecord(const store::Record& record) const;
  absl::Status UpdateRecord(const std::string& id, std::string state, std::string data) const;
  absl::StatusOr<std::optional<store::Record>> FindRecordByRequestId(
      const std::string& request_id) const;
  // Records [offset, offset + limit) of the filter, limit <= 0 = all.
  absl::StatusOr<std::vector<store::Record>> ListRecords(const RecordFilter& filter, int64_t offset,
                                                         int64_t limit) const;

  store::Store* const store_;
  const store::Kind kind_;
  const std::string collection_;
  const std::string type_name_;
};

template <typename M>
class RecordTable : public RecordTableBase {
 public:
  using RecordTableBase::RecordTableBase;

  // NOT_FOUND when absent, DATA_LOSS when the payload does not parse.
  absl::StatusOr<M> Get(const std::string& id) const {
    absl::StatusOr<store::Record> record = GetRecord(id);
    if (!record.ok()) return record.status();
    return ParseAs(*record);
  }

  // Creates the record; ALREADY_EXISTS (with ResourceInfo) when taken.
  absl::Status Insert(const std::string& id, const M& message, const RecordColumns& columns) const {
    return InsertRecord(store::Record{id, columns.state, columns.request_id, columns.create_time_us,
                                      message.SerializeAsString()});
  }

  // Replaces the payload and state of an existing record, keeping its
  // request id and create time; NOT_FOUND when absent.
  absl::Status Update(const std::string& id, const M& message, std::string state) const {
    return UpdateRecord(id, std::move(state), message.SerializeAsString());
  }

  // The record created with `request_id`, if any.
  absl::StatusOr<std::optional<M>> FindByRequestId(const std::string& request_id) const {
    absl::StatusOr<std::optional<store::Record>> record = FindRecordByRequestId(request_id);
    if (!record.ok()) return record.status();
    if (!record->has_value()) return std::optional<M>();
    absl::StatusOr<M> message = ParseAs(**record);
    if (!message.ok()) return message.status();
    return std::optional<M>(std::move(*message));
  }

  // Every record of the filter, at most `limit` (<= 0 = all).
  absl::StatusOr<std::vector<M>> List(const RecordFilter& filter, int64_t limit = 0) const {
    absl::StatusOr<std::vector<store::Record>> records = ListRecords(filter, 0, limit);
    if (!records.ok()) return records.status();
    std::vector<M> out;
    out.reserve(records->size());
    for (const store::Record& r : *records) {
      absl::StatusOr<M> message = ParseAs(r);
      if (!message.ok()) return message.status();
      out.push_back(std::move(*message));
    }
    return out;
  }

  // One page of the filter from a client's page_size and page_token.
  absl::StatusOr<RecordPage<M>> ListPage(int32_t page_size, absl::string_view page_token,
                                         const RecordFilter& filter = {},
                                         int64_t default_size = 50) const {
    absl::StatusOr<int64_t> offset = ParsePageToken(page_token);
    if (!offset.ok()) return offset.status();
    const int64_t size = ClampPageSize(page_size, default_size);
    // One more than asked tells whether a next page exists.
    absl::StatusOr<std::vector<store::Record>> records = ListRecords(filter, *offset, size + 1);
    if (!records.ok()) return records.status();
    RecordPage<M> page;
    for (size_t i = 0; i < records->size() && static_cast<int64_t>(i) < size; ++i) {
      absl::StatusOr<M> message = ParseAs((*records)[i]);
      if (!message.ok()) return message.status();
      page.items.push_back(std::move(*message));
    }
    if (static_cast<int64_t>(records->size()) > size) {
      page.next_page_token = std::to_string(*offset + size);
    }
    return page;
  }

  // The message of a raw record read from the store directly (e.g. for a
  // compare-and-set write); DATA_LOSS when it does not parse.
  absl::StatusOr<M> ParseAs(const store::Record& record) const {
    M message;
    absl::Status parsed = Parse(record, &message);
    if (!parsed.ok()) return parsed;
    return message;
  }
};

}  // namespace provp::server
