// Implementation of prompt_sets.h.
#include "server/prompt_sets.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/status_macros.h"

namespace provp::server {
namespace {

constexpr char kType[] = "provp.v1.PromptSet";

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

PromptSetManager::PromptSetManager(ServerEnv* env) : env_(env) {
  mkdir((env_->options.data_dir + "/prompt_sets").c_str(), 0755);
}

std::string PromptSetManager::PathFor(const std::string& id) const {
  return absl::StrCat(env_->options.data_dir, "/prompt_sets/", id, ".pset");
}

absl::Status PromptSetManager::Save(const v1::PromptSet& ps) {
  store::Record r;
  r.id = ps.name().substr(std::string("promptSets/").size());
  r.state = StateName(ps.state());
  r.create_time_us = ps.create_time().seconds() * 1000000 + ps.create_time().nanos() / 1000;
  r.data = ps.SerializeAsString();
  return env_->store->Put(store::Kind::kPromptSet, r);
}

void PromptSetManager::Recover() {
  store::ListOptions o;
  o.states = {"ACTIVE", "LOADING"};
  auto records = env_->store->List(store::Kind::kPromptSet, o);
  if (!records.ok()) {
    env_->logger->Error("prompt set recovery failed", {{"error", records.status().ToString()}});
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : *records) {
    v1::PromptSet ps;
    if (!ps.ParseFromString(r.data)) continue;
    auto loaded = LoadLocked(r.id, ps);
    if (!loaded.ok()) {
      env_->logger->Error("prompt set failed to load at startup",
                          {{"prompt_set", ps.name()}, {"error", loaded.status().ToString()}});
    }
  }
}

absl::StatusOr<v1::PromptSet> PromptSetManager::Get(const std::string& id) {
  auto r = env_->store->Get(store::Kind::kPromptSet, id);
  if (!r.ok()) {
    if (r.status().code() == absl::StatusCode::kNotFound) {
      return NotFound(kType, "promptSets/" + id);
    }
    return r.status();
  }
  v1::PromptSet ps;
  if (!ps.ParseFromString(r->data)) return absl::DataLossError("corrupt prompt set record " + id);
  return ps;
}

absl::StatusOr<std::shared_ptr<const v1::PromptSet>> PromptSetManager::GetLoaded(
    const std::string& id) {
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

absl::StatusOr<v1::PromptSet> PromptSetManager::LoadLocked(const std::string& id,
                                                           v1::PromptSet ps) {
  absl::Time start = absl::Now();
  absl::StatusOr<engine::PromptSetMeta> meta = env_->engine->LoadPromptSet(id, PathFor(id));
  if (env_->metrics) {
    env_->metrics->prompt_set_load_seconds->Observe(absl::ToDoubleSeconds(absl::Now() - start));
  }
  if (!meta.ok()) {
    ps.set_state(v1::PromptSet::FAILED);
    (void)Save(ps);
    loaded_.erase(id);
    if (env_->metrics) env_->metrics->prompt_sets_loaded->Set(loaded_.size());
    return meta.status();
  }
  ps.set_state(v1::PromptSet::ACTIVE);
  ps.set_memory_bytes(meta->memory_bytes);
  RETURN_IF_ERROR(Save(ps));
  loaded_[id] = std::make_shared<const v1::PromptSet>(ps);
  if (env_->metrics) env_->metrics->prompt_sets_loaded->Set(loaded_.size());
  return ps;
}

absl::StatusOr<v1::PromptSet> PromptSetManager::Load(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = loaded_.find(id);
  if (it != loaded_.end()) return *it->second;
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  if (ps.backbone() != env_->engine->info().backbone) {
    return FailedPrecondition("BACKBONE_MISMATCH", ps.name(),
                              absl::StrCat(ps.name(), " was trained on backbone ", ps.backbone(),
                                           "; the server runs ", env_->engine->info().backbone));
  }
  return LoadLocked(id, ps);
}

absl::StatusOr<v1::PromptSet> PromptSetManager::Unload(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  if (loaded_.erase(id) > 0) {
    absl::Status s = env_->engine->UnloadPromptSet(id);
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) return s;
  }
  if (env_->metrics) env_->metrics->prompt_sets_loaded->Set(loaded_.size());
  ps.set_state(v1::PromptSet::UNLOADED);
  ps.set_memory_bytes(0);
  RETURN_IF_ERROR(Save(ps));
  return ps;
}

absl::Status PromptSetManager::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(v1::PromptSet ps, Get(id));
  if (loaded_.erase(id) > 0) (void)env_->engine->UnloadPromptSet(id);
  if (env_->metrics) env_->metrics->prompt_sets_loaded->Set(loaded_.size());
  RETURN_IF_ERROR(env_->store->Delete(store::Kind::kPromptSet, id));
  unlink(PathFor(id).c_str());
  return absl::OkStatus();
}

absl::StatusOr<v1::PromptSet> PromptSetManager::Register(v1::PromptSet ps, const std::string& id,
                                                         bool load) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(engine::PromptSetMeta meta, env_->engine->InspectPromptSet(PathFor(id)));
  FillFromMeta(meta, &ps);
  ps.set_name("promptSets/" + id);
  ps.set_state(v1::PromptSet::UNLOADED);
  SetTimestamp(absl::Now(), ps.mutable_create_time());
  struct stat st;
  if (stat(PathFor(id).c_str(), &st) == 0) ps.set_size_bytes(st.st_size);
  store::Record r;
  r.id = id;
  r.state = StateName(ps.state());
  r.create_time_us = NowMicros();
  r.data = ps.SerializeAsString();
  absl::Status inserted = env_->store->Insert(store::Kind::kPromptSet, r);
  if (inserted.code() == absl::StatusCode::kAlreadyExists) {
    ErrorDetail d;
    d.resource_type = kType;
    d.resource_name = ps.name();
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                     absl::StrCat(ps.name(), " already exists"), d);
  }
  RETURN_IF_ERROR(inserted);
  if (!load) return ps;
  return LoadLocked(id, ps);
}

int PromptSetManager::loaded_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(loaded_.size());
}

}  // namespace provp::server
