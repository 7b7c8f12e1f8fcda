// Implementation of prompt_set_registry.h.
#include "server/state/prompt_set_registry.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/util/error_reason.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"
#include "server/state/job_states.h"
#include "server/state/resource_names.h"
#include "server/state/tables.h"
#include "server/state/timestamps.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;

std::string StateName(v1::PromptSet::State s) { return v1::PromptSet::State_Name(s); }

}  // namespace

void FillFromMeta(const engine::PromptSetMeta& meta, v1::PromptSet* ps) {
  ps->set_backbone(meta.backbone);
  ps->set_num_prompts(meta.num_prompts);
  ps->set_prompt_depth(meta.depth);
  ps->set_alpha(meta.alpha);
  if (!meta.variant.empty()) ps->set_variant(meta.variant);
  if (ps->base_class_names_size() == 0) {
    for (const auto& n : meta.base_class_names) ps->add_base_class_names(n);
  }
  if (ps->novel_class_names_size() == 0) {
    for (const auto& n : meta.novel_class_names) ps->add_novel_class_names(n);
  }
  if (ps->templates_size() == 0) {
    for (const auto& t : meta.templates) ps->add_templates(t);
  }
}

PromptSetRegistry::PromptSetRegistry(store::Store* store, FileRefs* files, engine::Engine* engine,
                                     const util::Clock* clock, ServerMetrics* metrics,
                                     Logger* logger, PromptSetRegistryOptions options)
    : table_(PromptSetTable(store)),
      jobs_(JobTable(store)),
      files_(files),
      engine_(engine),
      clock_(clock),
      metrics_(metrics),
      logger_(logger),
      options_(std::move(options)) {
  const std::string dir = options_.data_dir + "/prompt_sets";
  std::error_code ec;
  fs::create_directories(dir, ec);
  // Not fatal here: every later write into the folder reports its own error.
  if (ec)
    logger_->Error("cannot create the prompt-set folder", {{"path", dir}, {"error", ec.message()}});
}

std::string PromptSetRegistry::LegacyPath(const std::string& id) const {
  return absl::StrCat(options_.data_dir, "/prompt_sets/", id, ".pset");
}

absl::StatusOr<std::string> PromptSetRegistry::FilePath(const v1::PromptSet& ps) const {
  if (ps.content_key().empty()) {
    // Not moved into the file store (file_migration.h): the old layout.
    return LegacyPath(ps.name().substr(std::string(kPromptSets).size() + 1));
  }
  return files_->files()->LocalPath(ps.content_key());
}

absl::Status PromptSetRegistry::Save(const v1::PromptSet& ps) {
  return table_.Update(ps.name().substr(std::string(kPromptSets).size() + 1), ps,
                       StateName(ps.state()));
}

void PromptSetRegistry::PublishLoadedCountLocked() {
  metrics_->prompt_sets_loaded->Set(static_cast<double>(loaded_.size()));
}

void PromptSetRegistry::Recover() {
  RecordFilter filter;
  filter.states = {StateName(v1::PromptSet::ACTIVE), StateName(v1::PromptSet::LOADING)};
  absl::StatusOr<std::vector<v1::PromptSet>> sets = table_.List(filter);
  if (!sets.ok()) {
    logger_->Error("prompt set recovery failed", {{"error", sets.status().ToString()}});
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const v1::PromptSet& ps : *sets) {
    const std::string id = ps.name().substr(std::string(kPromptSets).size() + 1);
    auto loaded = LoadLocked(id, ps);
    if (!loaded.ok()) {
      logger_->Error("prompt set failed to load at startup",
                     {{"prompt_set", ps.name()}, {"error", loaded.status().ToString()}});
    }
  }
}

absl::StatusOr<v1::PromptSet> PromptSetRegistry::Get(const std::string& id) const {
  return table_.Get(id);
}

absl::StatusOr<RecordPage<v1::PromptSet>> PromptSetRegistry::List(
    int32_t page_size, absl::string_view page_token) const {
  return table_.ListPage(page_size, page_token);
}

absl::StatusOr<std::shared_ptr<const v1::PromptSet>> PromptSetRegistry::GetLoaded(
    const std::string& id) {
  if (options_.shared_refresh > absl::ZeroDuration()) return GetLoadedShared(id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loaded_.find(id);
    if (it != loaded_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  return FailedPrecondition(
      "PROMPT_SET_NOT_LOADED", ps.name(),
      absl::StrCat(ps.name(), " is ", StateName(ps.state()), "; call LoadPromptSet first"));
}

void PromptSetRegistry::DropLocked(const std::string& id) {
  checked_.erase(id);
  if (loaded_.erase(id) == 0) return;
  absl::Status s = engine_->UnloadPromptSet(id);
  if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
    logger_->Warning("unloading a prompt set changed elsewhere failed",
                     {{"prompt_set", table_.NameOf(id)}, {"error", s.ToString()}});
  }
  PublishLoadedCountLocked();
}

absl::StatusOr<std::shared_ptr<const v1::PromptSet>> PromptSetRegistry::GetLoadedShared(
    const std::string& id) {
  const absl::Time now = clock_->Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loaded_.find(id);
    auto checked = checked_.find(id);
    if (it != loaded_.end() && checked != checked_.end() &&
        now - checked->second < options_.shared_refresh) {
      return it->second;
    }
  }
  absl::StatusOr<v1::PromptSet> stored = Get(id);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = loaded_.find(id);
  if (!stored.ok()) {
    if (stored.status().code() == absl::StatusCode::kNotFound) {
      DropLocked(id);  // deleted on another replica
    } else if (it != loaded_.end()) {
      // The store is unreachable: keep serving what is loaded.
      return it->second;
    }
    return stored.status();
  }
  if (stored->state() == v1::PromptSet::ACTIVE) {
    // Same record (a re-import gets a new create time): still good.
    if (it != loaded_.end() && it->second->create_time().SerializeAsString() ==
                                   stored->create_time().SerializeAsString()) {
      checked_[id] = now;
      return it->second;
    }
    DropLocked(id);
    if (stored->backbone() != engine_->info().backbone) {
      return FailedPrecondition(
          "BACKBONE_MISMATCH", stored->name(),
          absl::StrCat(stored->name(), " was trained on backbone ", stored->backbone(),
                       "; this replica runs ", engine_->info().backbone));
    }
    // Load from the shared folder without writing the record: ACTIVE is
    // already the shared state, and every replica rewriting it would churn.
    const absl::Time start = clock_->Now();
    absl::StatusOr<std::string> path = FilePath(*stored);
    absl::StatusOr<engine::PromptSetMeta> meta =
        path.ok() ? engine_->LoadPromptSet(id, *path)
                  : absl::StatusOr<engine::PromptSetMeta>(path.status());
    metrics_->prompt_set_load_seconds->Observe(absl::ToDoubleSeconds(clock_->Now() - start));
    if (!meta.ok()) {
      logger_->Error("cannot load a shared prompt set on this replica",
                     {{"prompt_set", stored->name()}, {"error", meta.status().ToString()}});
      return meta.status();
    }
    auto ps = std::make_shared<v1::PromptSet>(*stored);
    ps->set_memory_bytes(meta->memory_bytes);
    loaded_[id] = ps;
    checked_[id] = now;
    PublishLoadedCountLocked();
    return std::shared_ptr<const v1::PromptSet>(ps);
  }
  DropLocked(id);  // unloaded or failed elsewhere
  return FailedPrecondition("PROMPT_SET_NOT_LOADED", stored->name(),
                            absl::StrCat(stored->name(), " is ", StateName(stored->state()),
                                         "; call LoadPromptSet first"));
}

absl::StatusOr<v1::PromptSet> PromptSetRegistry::LoadLocked(const std::string& id,
                                                            v1::PromptSet ps) {
  const absl::Time start = clock_->Now();
  absl::StatusOr<std::string> path = FilePath(ps);
  absl::StatusOr<engine::PromptSetMeta> meta =
      path.ok() ? engine_->LoadPromptSet(id, *path)
                : absl::StatusOr<engine::PromptSetMeta>(path.status());
  metrics_->prompt_set_load_seconds->Observe(absl::ToDoubleSeconds(clock_->Now() - start));
  if (!meta.ok()) {
    ps.set_state(v1::PromptSet::FAILED);
    absl::Status saved = Save(ps);
    if (!saved.ok()) {
      // The load error is what the caller needs; the stale state is logged.
      logger_->Error("could not record a failed prompt-set load",
                     {{"prompt_set", ps.name()}, {"error", saved.ToString()}});
    }
    loaded_.erase(id);
    PublishLoadedCountLocked();
    return meta.status();
  }
  ps.set_state(v1::PromptSet::ACTIVE);
  ps.set_memory_bytes(meta->memory_bytes);
  RETURN_IF_ERROR(Save(ps));
  loaded_[id] = std::make_shared<const v1::PromptSet>(ps);
  checked_[id] = clock_->Now();
  PublishLoadedCountLocked();
  return ps;
}

absl::StatusOr<v1::PromptSet> PromptSetRegistry::Load(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = loaded_.find(id);
  if (it != loaded_.end()) return *it->second;
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  if (ps.backbone() != engine_->info().backbone) {
    return FailedPrecondition(util::kReasonBackboneMismatch, ps.name(),
                              absl::StrCat(ps.name(), " was trained on backbone ", ps.backbone(),
                                           "; the server runs ", engine_->info().backbone));
  }
  return LoadLocked(id, ps);
}

absl::StatusOr<v1::PromptSet> PromptSetRegistry::Unload(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  checked_.erase(id);
  if (loaded_.erase(id) > 0) {
    absl::Status s = engine_->UnloadPromptSet(id);
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) return s;
  }
  PublishLoadedCountLocked();
  ps.set_state(v1::PromptSet::UNLOADED);
  ps.set_memory_bytes(0);
  RETURN_IF_ERROR(Save(ps));
  return ps;
}

absl::Status PromptSetRegistry::Delete(const std::string& id) {
  const std::string name = table_.NameOf(id);
  // Refuse while an unfinished job refers to the set.
  RecordFilter active;
  active.states = ActiveJobStateNames();
  ASSIGN_OR_RETURN(std::vector<v1::TuningJob> jobs, jobs_.List(active));
  for (const v1::TuningJob& job : jobs) {
    if (job.base_prompt_set() == name) {
      return FailedPrecondition("PROMPT_SET_IN_USE", name,
                                absl::StrCat(name, " is used by ", job.name()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  // Its refresh stamp goes too: a server that deletes prompt sets all day
  // kept one per set ever loaded (found reading for the soak's growth).
  checked_.erase(id);
  if (loaded_.erase(id) > 0) {
    absl::Status unloaded = engine_->UnloadPromptSet(id);
    if (!unloaded.ok() && unloaded.code() != absl::StatusCode::kNotFound) {
      // The record goes regardless; the engine's copy is only memory.
      logger_->Warning("unloading a deleted prompt set failed",
                       {{"prompt_set", ps.name()}, {"error", unloaded.ToString()}});
    }
  }
  PublishLoadedCountLocked();
  RETURN_IF_ERROR(table_.Delete(id));
  // The file goes once no other record refers to it (the same bytes may
  // have been imported under another id).
  if (!ps.content_key().empty()) files_->Release({ps.content_key()});
  if (unlink(LegacyPath(id).c_str()) != 0 && errno != ENOENT) {
    // The record is gone, so the file is only wasted space.
    logger_->Warning("could not remove a deleted prompt set's file",
                     {{"path", LegacyPath(id)}, {"error", std::strerror(errno)}});
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::PromptSet> PromptSetRegistry::Register(v1::PromptSet ps, const std::string& id,
                                                          const std::string& content_key,
                                                          bool load) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::string path, files_->files()->LocalPath(content_key));
  ASSIGN_OR_RETURN(engine::PromptSetMeta meta, engine_->InspectPromptSet(path));
  FillFromMeta(meta, &ps);
  const absl::Time now = clock_->Now();
  ps.set_name(table_.NameOf(id));
  ps.set_state(v1::PromptSet::UNLOADED);
  ps.set_content_key(content_key);
  SetTimestamp(now, ps.mutable_create_time());
  struct stat st;
  if (stat(path.c_str(), &st) == 0) ps.set_size_bytes(st.st_size);
  RETURN_IF_ERROR(table_.Insert(id, ps, {StateName(ps.state()), "", absl::ToUnixMicros(now)}));
  if (!load) return ps;
  return LoadLocked(id, ps);
}

absl::StatusOr<v1::PromptSet> PromptSetRegistry::Import(const ReadImportMessage& read) {
  const Limits& limits = options_.limits;
  v1::ImportPromptSetRequest msg;
  ASSIGN_OR_RETURN(bool first, read(&msg));
  if (!first || !msg.has_metadata()) {
    return InvalidArgument("METADATA_FIRST", "the first message must carry metadata", "metadata");
  }
  const v1::ImportPromptSetMetadata meta = msg.metadata();
  RETURN_IF_ERROR(ValidateId(meta.prompt_set_id(), "metadata.prompt_set_id"));
  if (static_cast<int>(meta.display_name().size()) > limits.max_name_length) {
    return InvalidArgument("NAME_TOO_LONG", "display_name is too long", "metadata.display_name");
  }
  ASSIGN_OR_RETURN(bool exists, table_.Exists(meta.prompt_set_id()));
  if (exists) {
    ErrorDetail d;
    d.resource_type = "provp.v1.PromptSet";
    d.resource_name = table_.NameOf(meta.prompt_set_id());
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                     absl::StrCat(d.resource_name, " already exists"), d);
  }
  ASSIGN_OR_RETURN(int64_t count, table_.Count());
  if (count >= limits.max_prompt_sets) {
    return ResourceExhausted(
        "TOO_MANY_PROMPT_SETS", "max_prompt_sets",
        absl::StrCat("the server holds its limit of ", limits.max_prompt_sets, " prompt sets"));
  }
  // Stream the chunks to a staging file: the engine validates a file, and
  // a large import never sits in memory whole.
  const std::string staged = absl::StrCat(options_.data_dir, "/prompt_sets/.import-", RandomHex(8));
  struct StagedFile {
    std::string path;
    ~StagedFile() {
      std::error_code ec;
      fs::remove(path, ec);  // best effort: a staging leftover is only space
    }
  } cleanup{staged};
  ASSIGN_OR_RETURN(std::unique_ptr<util::WritableFile> out, options_.env->NewWritableFile(staged));
  int64_t size = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool more, read(&msg));
    if (!more) break;
    if (!msg.has_chunk() && msg.has_metadata()) {
      return InvalidArgument("METADATA_TWICE", "only the first message may carry metadata",
                             "metadata");
    }
    size += static_cast<int64_t>(msg.chunk().size());
    if (size > limits.max_upload_bytes) {
      return ResourceExhausted("UPLOAD_TOO_LARGE", "max_upload_bytes",
                               absl::StrCat("import exceeds ", limits.max_upload_bytes, " bytes"));
    }
    RETURN_IF_ERROR(out->Append(msg.chunk()));
  }
  RETURN_IF_ERROR(out->Close());
  if (size == 0) return InvalidArgument("EMPTY_FILE", "no file bytes were sent", "chunk");
  auto inspected = engine_->InspectPromptSet(staged);
  if (!inspected.ok()) {
    // The engine names the mismatches it knows (BACKBONE_MISMATCH,
    // PROMPT_SHAPE_MISMATCH); a file it cannot read is the client's bad
    // file; anything else (I/O, internal) is not about the file and passes.
    const std::string reason = util::ErrorReasonOf(inspected.status());
    if (inspected.status().code() == absl::StatusCode::kFailedPrecondition && !reason.empty()) {
      return FailedPrecondition(reason, table_.NameOf(meta.prompt_set_id()),
                                inspected.status().message());
    }
    if (inspected.status().code() == absl::StatusCode::kInvalidArgument ||
        inspected.status().code() == absl::StatusCode::kDataLoss ||
        inspected.status().code() == absl::StatusCode::kFailedPrecondition) {
      return InvalidArgument("INVALID_PROMPT_SET_FILE", inspected.status().message(), "chunk");
    }
    return inspected.status();
  }
  // Pinned from the store until the record names it.
  FileRefs::Pin pin = files_->NewPin();
  ASSIGN_OR_RETURN(std::string key, files_->PutFile(pin, staged));
  v1::PromptSet ps;
  ps.set_display_name(meta.display_name());
  for (const auto& [k, v] : meta.labels()) (*ps.mutable_labels())[k] = v;
  absl::StatusOr<v1::PromptSet> registered = Register(ps, meta.prompt_set_id(), key, meta.load());
  if (!registered.ok()) {
    // Kept if a record took it after all (a load that failed after the
    // insert leaves a FAILED set that refers to it).
    { FileRefs::Pin released = std::move(pin); }
    files_->Release({key});
  }
  return registered;
}

absl::StatusOr<std::string> PromptSetRegistry::ReadFile(const std::string& id) const {
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  if (ps.content_key().empty()) {
    return util::ReadFile(LegacyPath(id), options_.limits.max_upload_bytes);
  }
  return files_->files()->Read(ps.content_key(), options_.limits.max_upload_bytes);
}

int PromptSetRegistry::loaded_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(loaded_.size());
}

}  // namespace provp::server
