// Prompt-set lifecycle on the server: metadata in the store (the persisted
// state says whether a set should be loaded after a restart), prompt files
// in the file store under their content key (PromptSet.content_key, checked
// on every load and export: DATA_LOSS when the file no longer matches), and
// the loaded sets in the engine. Sets of an older data folder
// (<data_dir>/prompt_sets/<id>.pset) are moved into the file store at start
// (file_migration.h); one that could not be moved is still read there. Classify reads loaded sets
// from an in-memory map, never from the store. Collaborators come in through the constructor and
// must outlive it. Thread-safe: transitions are serialised by mu_; lookups of loaded sets take a
// shared snapshot.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/engine/engine.h"
#include "core/store/store.h"
#include "core/util/clock.h"
#include "core/util/env.h"
#include "provp/v1/prompt_set.pb.h"
#include "provp/v1/tuning.pb.h"
#include "server/state/file_refs.h"
#include "server/state/limits.h"
#include "server/state/logging.h"
#include "server/state/records.h"
#include "server/state/server_metrics.h"

namespace provp::server {

struct PromptSetRegistryOptions {
  // Import staging and older versions' files: <data_dir>/prompt_sets/.
  std::string data_dir;
  Limits limits;
  // Zero: this process owns the store (embedded). Positive: replicas share
  // the store and the data folder, so a prompt set's record is the truth
  // for all of them: GetLoaded loads an ACTIVE set on first use here, and
  // rechecks the record when its local view is older than this (a delete,
  // unload or re-import on another replica is seen within this time, at the
  // next use).
  absl::Duration shared_refresh = absl::ZeroDuration();
  // Import staging writes go through it (fault injection in tests).
  util::Env* env = util::Env::Default();
};

class PromptSetRegistry {
 public:
  // Reads the next message of an import stream; false at its end, an
  // error (a message that does not parse) ends the import with it.
  using ReadImportMessage = std::function<absl::StatusOr<bool>(v1::ImportPromptSetRequest*)>;

  PromptSetRegistry(store::Store* store, FileRefs* files, engine::Engine* engine,
                    const util::Clock* clock, ServerMetrics* metrics, Logger* logger,
                    PromptSetRegistryOptions options);

  // Startup: loads every set stored as ACTIVE or LOADING (a failure marks
  // the set FAILED and is logged; it does not stop the server).
  void Recover();

  // Where a set of an older version kept its file.
  std::string LegacyPath(const std::string& id) const;
  // A local path holding the set's file, checked against its content key
  // (DATA_LOSS when the stored file is damaged).
  absl::StatusOr<std::string> FilePath(const v1::PromptSet& prompt_set) const;

  // Stored metadata with the live state.
  absl::StatusOr<v1::PromptSet> Get(const std::string& id) const;
  absl::StatusOr<RecordPage<v1::PromptSet>> List(int32_t page_size,
                                                 absl::string_view page_token) const;
  // A loaded set for Classify: NOT_FOUND when unknown, FAILED_PRECONDITION
  // (PROMPT_SET_NOT_LOADED) when not ACTIVE. With a shared store an ACTIVE
  // set that another replica loaded is loaded here on first use.
  absl::StatusOr<std::shared_ptr<const v1::PromptSet>> GetLoaded(const std::string& id);

  absl::StatusOr<v1::PromptSet> Load(const std::string& id);
  absl::StatusOr<v1::PromptSet> Unload(const std::string& id);
  // FAILED_PRECONDITION (PROMPT_SET_IN_USE) while an unfinished job refers
  // to the set.
  absl::Status Delete(const std::string& id);

  // Records a new set whose file is already in the file store under
  // `content_key` (the caller keeps it pinned until this returns): fills
  // backbone and prompt shape from the file, stores it UNLOADED, then loads
  // it when `load`. ALREADY_EXISTS when the id is taken.
  absl::StatusOr<v1::PromptSet> Register(v1::PromptSet prompt_set, const std::string& id,
                                         const std::string& content_key, bool load);

  // An import stream: metadata first, then file chunks, streamed to a
  // staging file (at most max_upload_bytes) that the engine validates before
  // it goes into the file store.
  absl::StatusOr<v1::PromptSet> Import(const ReadImportMessage& read);
  // The set's file, for export, checked against its content key.
  absl::StatusOr<std::string> ReadFile(const std::string& id) const;

  int loaded_count() const;

 private:
  absl::Status Save(const v1::PromptSet& ps);
  absl::StatusOr<v1::PromptSet> LoadLocked(const std::string& id, v1::PromptSet ps);
  void PublishLoadedCountLocked();
  // Shared store: GetLoaded against the stored record.
  absl::StatusOr<std::shared_ptr<const v1::PromptSet>> GetLoadedShared(const std::string& id);
  // Forgets a locally loaded set (engine and map).
  void DropLocked(const std::string& id);

  // Constant after construction.
  const RecordTable<v1::PromptSet> table_;
  const RecordTable<v1::TuningJob> jobs_;
  FileRefs* const files_;
  engine::Engine* const engine_;
  const util::Clock* const clock_;
  ServerMetrics* const metrics_;
  Logger* const logger_;
  const PromptSetRegistryOptions options_;

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::map<std::string, std::shared_ptr<const v1::PromptSet>> loaded_;
  // Shared store: when each loaded set was last checked against the store.
  std::map<std::string, absl::Time> checked_;
};

// PromptSet fields that come from the file.
void FillFromMeta(const engine::PromptSetMeta& meta, v1::PromptSet* ps);

}  // namespace provp::server
