// What the two Store backends share: table names, the record column list
// in the order both read it, and the schema version. Internal to
// core/store (not part of store.h's contract).
#pragma once

#include "core/store/store.h"

namespace provp::store::internal {

// Version 1: the record tables and events. Version 2: version, lease_owner
// and lease_expires_us on every record table (compare-and-set and leases).
inline constexpr int kSchemaVersion = 2;

// The record columns in the order Row readers expect them.
inline constexpr char kRecordColumns[] =
    "id, state, request_id, create_time_us, data, version, lease_owner, lease_expires_us";

inline const char* TableName(Kind kind) {
  switch (kind) {
    case Kind::kDataset:
      return "datasets";
    case Kind::kJob:
      return "jobs";
    case Kind::kPromptSet:
      return "prompt_sets";
    case Kind::kClassSet:
      return "class_sets";
  }
  return "invalid";
}

inline constexpr Kind kAllKinds[] = {Kind::kDataset, Kind::kJob, Kind::kPromptSet, Kind::kClassSet};

}  // namespace provp::store::internal
