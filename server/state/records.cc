// Implementation of records.h (the untyped half).
#include "server/state/records.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/state/errors.h"

namespace provp::server {

absl::StatusOr<int64_t> ParsePageToken(absl::string_view token) {
  if (token.empty()) return 0;
  int64_t offset = 0;
  if (!absl::SimpleAtoi(token, &offset) || offset < 0) {
    return InvalidArgument("INVALID_PAGE_TOKEN", "page_token is not one this server issued",
                           "page_token");
  }
  return offset;
}

int64_t ClampPageSize(int32_t page_size, int64_t default_size) {
  if (page_size <= 0) return default_size;
  return page_size > 1000 ? 1000 : page_size;
}

RecordTableBase::RecordTableBase(store::Store* store, store::Kind kind, std::string collection,
                                 std::string type_name)
    : store_(store),
      kind_(kind),
      collection_(std::move(collection)),
      type_name_(std::move(type_name)) {}

std::string RecordTableBase::NameOf(absl::string_view id) const {
  return absl::StrCat(collection_, "/", id);
}

absl::Status RecordTableBase::NotFoundError(absl::string_view id) const {
  return NotFound(type_name_, NameOf(id));
}

absl::StatusOr<store::Record> RecordTableBase::GetRecord(const std::string& id) const {
  absl::StatusOr<store::Record> record = store_->Get(kind_, id);
  if (record.status().code() == absl::StatusCode::kNotFound) return NotFoundError(id);
  return record;
}

absl::Status RecordTableBase::Parse(const store::Record& record,
                                    google::protobuf::MessageLite* out) const {
  if (out->ParseFromString(record.data)) return absl::OkStatus();
  ErrorDetail d;
  d.resource_type = type_name_;
  d.resource_name = NameOf(record.id);
  return MakeError(
      absl::StatusCode::kDataLoss, "CORRUPT_RECORD",
      absl::StrCat("the stored record of ", NameOf(record.id), " does not parse as ", type_name_),
      d);
}

absl::Status RecordTableBase::InsertRecord(const store::Record& record) const {
  absl::Status inserted = store_->Insert(kind_, record);
  if (inserted.code() != absl::StatusCode::kAlreadyExists) return inserted;
  ErrorDetail d;
  d.resource_type = type_name_;
  d.resource_name = NameOf(record.id);
  return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                   absl::StrCat(NameOf(record.id), " already exists"), d);
}

absl::Status RecordTableBase::UpdateRecord(const std::string& id, std::string state,
                                           std::string data) const {
  absl::StatusOr<store::Record> record = GetRecord(id);
  if (!record.ok()) return record.status();
  record->state = std::move(state);
  record->data = std::move(data);
  return store_->Put(kind_, *record);
}

absl::StatusOr<std::optional<store::Record>> RecordTableBase::FindRecordByRequestId(
    const std::string& request_id) const {
  return store_->FindByRequestId(kind_, request_id);
}

absl::StatusOr<std::vector<store::Record>> RecordTableBase::ListRecords(const RecordFilter& filter,
                                                                        int64_t offset,
                                                                        int64_t limit) const {
  store::ListOptions o;
  o.offset = offset;
  o.limit = limit;
  o.states = filter.states;
  o.order = filter.order;
  return store_->List(kind_, o);
}

absl::StatusOr<bool> RecordTableBase::Exists(const std::string& id) const {
  absl::StatusOr<store::Record> record = store_->Get(kind_, id);
  if (record.ok()) return true;
  if (record.status().code() == absl::StatusCode::kNotFound) return false;
  return record.status();
}

absl::StatusOr<int64_t> RecordTableBase::Count(const std::vector<std::string>& states) const {
  return store_->Count(kind_, states);
}

absl::Status RecordTableBase::Delete(const std::string& id) const {
  absl::Status deleted = store_->Delete(kind_, id);
  if (deleted.code() == absl::StatusCode::kNotFound) return NotFoundError(id);
  return deleted;
}

}  // namespace provp::server
