// Implementation of class_set_registry.h.
#include "server/state/class_set_registry.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"
#include "server/state/request_checks.h"
#include "server/state/resource_names.h"
#include "server/state/tables.h"
#include "server/state/timestamps.h"

namespace provp::server {

ClassSetRegistry::ClassSetRegistry(store::Store* store, const util::Clock* clock, Limits limits)
    : table_(ClassSetTable(store)), clock_(clock), limits_(limits) {}

absl::StatusOr<v1::ClassSet> ClassSetRegistry::Create(const v1::CreateClassSetRequest& req) {
  RETURN_IF_ERROR(ValidateId(req.class_set_id(), "class_set_id"));
  if (!req.request_id().empty()) {
    ASSIGN_OR_RETURN(std::optional<v1::ClassSet> prior, table_.FindByRequestId(req.request_id()));
    if (prior.has_value()) return *prior;
  }
  v1::ClassSet cs = req.class_set();
  std::vector<std::string> names(cs.class_names().begin(), cs.class_names().end());
  std::vector<std::string> templates(cs.templates().begin(), cs.templates().end());
  RETURN_IF_ERROR(
      ValidateNames(names, "class_set.class_names", limits_, limits_.max_classes_per_request));
  RETURN_IF_ERROR(ValidateTemplates(templates, limits_));
  if (static_cast<int>(cs.display_name().size()) > limits_.max_name_length) {
    return InvalidArgument("NAME_TOO_LONG", "display_name is too long", "class_set.display_name");
  }
  ASSIGN_OR_RETURN(int64_t count, table_.Count());
  if (count >= limits_.max_class_sets) {
    return ResourceExhausted(
        "TOO_MANY_CLASS_SETS", "max_class_sets",
        absl::StrCat("the server holds its limit of ", limits_.max_class_sets, " class sets"));
  }
  const absl::Time now = clock_->Now();
  cs.set_name(table_.NameOf(req.class_set_id()));
  cs.set_state(v1::ClassSet::ACTIVE);
  SetTimestamp(now, cs.mutable_create_time());
  cs.set_etag(RandomHex(12));
  RETURN_IF_ERROR(table_.Insert(
      req.class_set_id(), cs,
      {v1::ClassSet::State_Name(cs.state()), req.request_id(), absl::ToUnixMicros(now)}));
  return cs;
}

absl::StatusOr<v1::ClassSet> ClassSetRegistry::Get(const std::string& id) const {
  return table_.Get(id);
}

absl::StatusOr<RecordPage<v1::ClassSet>> ClassSetRegistry::List(
    int32_t page_size, absl::string_view page_token) const {
  return table_.ListPage(page_size, page_token);
}

absl::Status ClassSetRegistry::Delete(const std::string& id) { return table_.Delete(id); }

}  // namespace provp::server
