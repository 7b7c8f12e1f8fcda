// The server's four record tables, each naming its store kind, collection
// and resource type once. Header-only; RecordTable is stateless, so making
// one is cheap.
#pragma once

#include "core/store/store.h"
#include "provp/v1/class_set.pb.h"
#include "provp/v1/dataset.pb.h"
#include "provp/v1/prompt_set.pb.h"
#include "provp/v1/tuning.pb.h"
#include "server/state/records.h"
#include "server/state/resource_names.h"

namespace provp::server {

inline RecordTable<v1::Dataset> DatasetTable(store::Store* store) {
  return RecordTable<v1::Dataset>(store, store::Kind::kDataset, kDatasets, "provp.v1.Dataset");
}
inline RecordTable<v1::TuningJob> JobTable(store::Store* store) {
  return RecordTable<v1::TuningJob>(store, store::Kind::kJob, kTuningJobs, "provp.v1.TuningJob");
}
inline RecordTable<v1::PromptSet> PromptSetTable(store::Store* store) {
  return RecordTable<v1::PromptSet>(store, store::Kind::kPromptSet, kPromptSets,
                                    "provp.v1.PromptSet");
}
inline RecordTable<v1::ClassSet> ClassSetTable(store::Store* store) {
  return RecordTable<v1::ClassSet>(store, store::Kind::kClassSet, kClassSets, "provp.v1.ClassSet");
}

}  // namespace provp::server
