// Prompt-set lifecycle on the server: metadata in the store (the persisted
// state says whether a set should be loaded after a restart), prompt files
// under <data_dir>/prompt_sets/<id>.pset, and the loaded sets in the
// engine. Classify reads loaded sets from an in-memory map, never from
// SQLite. Thread-safe: transitions are serialised by one mutex; lookups of
// loaded sets take a shared snapshot.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "provp/v1/prompt_set.pb.h"
#include "server/rpc.h"

namespace provp::server {

class PromptSetManager {
 public:
  explicit PromptSetManager(ServerEnv* env);

  // Startup: loads every set stored as ACTIVE or LOADING (a failure marks
  // the set FAILED and is logged; it does not stop the server).
  void Recover();

  std::string PathFor(const std::string& id) const;

  // Stored metadata with the live state.
  absl::StatusOr<v1::PromptSet> Get(const std::string& id);
  // A loaded set for Classify: NOT_FOUND when unknown, FAILED_PRECONDITION
  // (PROMPT_SET_NOT_LOADED) when not ACTIVE.
  absl::StatusOr<std::shared_ptr<const v1::PromptSet>> GetLoaded(const std::string& id);

  absl::StatusOr<v1::PromptSet> Load(const std::string& id);
  absl::StatusOr<v1::PromptSet> Unload(const std::string& id);
  absl::Status Delete(const std::string& id);

  // Records a new set whose file is already at PathFor(id): fills backbone
  // and prompt shape from the file, stores it UNLOADED, then loads it when
  // `load`. ALREADY_EXISTS when the id is taken.
  absl::StatusOr<v1::PromptSet> Register(v1::PromptSet prompt_set, const std::string& id,
                                         bool load);

  int loaded_count() const;

 private:
  absl::Status Save(const v1::PromptSet& ps);
  absl::StatusOr<v1::PromptSet> LoadLocked(const std::string& id, v1::PromptSet ps);

  ServerEnv* env_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const v1::PromptSet>> loaded_;
};

// PromptSet fields that come from the file.
void FillFromMeta(const engine::PromptSetMeta& meta, v1::PromptSet* ps);

}  // namespace provp::server
