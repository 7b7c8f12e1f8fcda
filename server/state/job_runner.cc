// Implementation of job_runner.h.
#include "server/state/job_runner.h"

#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/data/loaders.h"
#include "core/image/image_io.h"
#include "core/store/file_store.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"
#include "server/state/hyperparameter_checks.h"
#include "server/state/job_states.h"
#include "server/state/resource_names.h"
#include "server/state/tables.h"
#include "server/state/timestamps.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;

// "tuningJobs/x" -> "x" for names this runner wrote itself.
std::string IdOf(const v1::TuningJob& job) {
  return job.name().substr(std::string(kTuningJobs).size() + 1);
}

google::rpc::Status CancelledByUser() {
  return ToRpcStatus(MakeError(absl::StatusCode::kCancelled, "CANCELLED", "cancelled by user"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseJobStateFilter(const std::string& filter) {
  std::vector<std::string> states;
  std::string f(absl::StripAsciiWhitespace(filter));
  if (f.empty()) return states;
  for (absl::string_view term : absl::StrSplit(f, " OR ")) {
    term = absl::StripAsciiWhitespace(term);
    std::vector<absl::string_view> kv = absl::StrSplit(term, '=');
    v1::TuningJob::State s;
    if (kv.size() != 2 || absl::StripAsciiWhitespace(kv[0]) != "state" ||
        !v1::TuningJob::State_Parse(std::string(absl::StripAsciiWhitespace(kv[1])), &s)) {
      return InvalidArgument(
          "INVALID_FILTER",
          absl::StrCat("filter term '", term, "' is not 'state=<QUEUED|RUNNING|...>'"), "filter");
    }
    states.push_back(StateName(s));
  }
  return states;
}

JobRunner::JobRunner(store::Store* store, FileRefs* files, engine::Engine* engine,
                     DatasetRegistry* datasets, PromptSetRegistry* prompt_sets,
                     const util::Clock* clock, ServerMetrics* metrics, Logger* logger,
                     JobRunnerOptions options)
    : store_(store),
      table_(JobTable(store)),
      files_(files),
      engine_(engine),
      datasets_(datasets),
      prompt_sets_(prompt_sets),
      clock_(clock),
      metrics_(metrics),
      logger_(logger),
      options_(std::move(options)) {}

JobRunner::~JobRunner() { Stop(); }

std::string JobRunner::JobDir(const std::string& id) const {
  return absl::StrCat(options_.data_dir, "/jobs/", id);
}

void JobRunner::RemoveJobDir(const std::string& id) {
  std::error_code ec;
  fs::remove_all(JobDir(id), ec);
  if (ec) {
    // Scratch only: what matters is in the store and the file store.
    logger_->Warning("cannot remove a finished job's working folder",
                     {{"job_id", id}, {"error", ec.message()}});
  }
}

absl::Status JobRunner::FetchCheckpoint(const std::string& id, const v1::TuningJob& job) {
  const std::string local = JobDir(id) + "/checkpoint.safetensors";
  if (job.checkpoint_key().empty()) {
    // No checkpoint recorded: a file here is from an older version (kept,
    // the engine checks that it matches) or was never recorded.
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> bytes =
      files_->files()->Read(job.checkpoint_key(), options_.limits.max_upload_bytes);
  if (!bytes.ok()) {
    // The checkpoint only saves time: start over, loudly.
    std::error_code ec;
    fs::remove(local, ec);
    v1::TuningJobEvent ev;
    ev.set_type(v1::TuningJobEvent::MESSAGE);
    ev.set_level(v1::TuningJobEvent::WARNING);
    ev.set_message(absl::StrCat("the job's checkpoint ", job.checkpoint_key(), " cannot be read (",
                                bytes.status().ToString(), "); training starts over from epoch 0"));
    Emit(job, ev);
    logger_->Error("a job's checkpoint cannot be read; it starts over",
                   {{"job_id", id}, {"error", bytes.status().ToString()}});
    return absl::OkStatus();
  }
  return util::WriteFileAtomic(local, *bytes);
}

void JobRunner::SweepEndedJobDirs() {
  std::error_code ec;
  for (auto it = fs::directory_iterator(absl::StrCat(options_.data_dir, "/jobs"), ec);
       !ec && it != fs::end(it); it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    const std::string id = it->path().filename().string();
    absl::StatusOr<v1::TuningJob> job = Get(id);
    const bool ended =
        job.ok() ? IsTerminal(job->state()) : job.status().code() == absl::StatusCode::kNotFound;
    if (!ended) continue;
    logger_->Info("removing the working folder a crash left behind",
                  {{"job_id", id}, {"state", job.ok() ? StateName(job->state()) : "deleted"}});
    RemoveJobDir(id);
  }
}

void JobRunner::Start() {
  Recover();
  runner_ = std::thread([this] { RunnerLoop(); });
}

void JobRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stop_run_ = true;
  }
  runner_cv_.notify_all();
  events_cv_.notify_all();
  if (runner_.joinable()) runner_.join();
}

absl::Status JobRunner::SaveLocked(v1::TuningJob& job) {
  SetTimestamp(clock_->Now(), job.mutable_update_time());
  job.set_etag(RandomHex(12));
  return table_.Update(IdOf(job), job, StateName(job.state()));
}

absl::StatusOr<v1::TuningJob> JobRunner::MutateLocked(const std::string& id,
                                                      const JobChange& change) {
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<store::Record> record = store_->Get(store::Kind::kJob, id);
    if (!record.ok()) {
      if (record.status().code() == absl::StatusCode::kNotFound) return table_.NotFoundError(id);
      return record.status();
    }
    ASSIGN_OR_RETURN(v1::TuningJob job, table_.ParseAs(*record));
    ASSIGN_OR_RETURN(bool write, change(job));
    if (!write) return job;
    SetTimestamp(clock_->Now(), job.mutable_update_time());
    job.set_etag(RandomHex(12));
    record->state = StateName(job.state());
    record->data = job.SerializeAsString();
    absl::StatusOr<int64_t> version = store_->Update(store::Kind::kJob, *record, record->version);
    if (version.ok()) return job;
    if (version.status().code() == absl::StatusCode::kUnimplemented) {
      // A store without versions has one writer process: job_mu_ suffices.
      RETURN_IF_ERROR(store_->Put(store::Kind::kJob, *record));
      return job;
    }
    // ABORTED: another replica wrote the record in between; read it again.
    if (version.status().code() != absl::StatusCode::kAborted || attempt >= 20) {
      return version.status();
    }
  }
}

void JobRunner::ReleaseLease(const std::string& id) {
  absl::Status s = store_->ReleaseLease(store::Kind::kJob, id, options_.owner);
  if (!s.ok() && s.code() != absl::StatusCode::kUnimplemented &&
      s.code() != absl::StatusCode::kNotFound) {
    // It expires by itself after options_.lease.
    logger_->Warning("cannot release a job lease", {{"job_id", id}, {"error", s.ToString()}});
  }
}

void JobRunner::KeepLease(const std::string& id) {
  const absl::Duration renew_every = options_.lease / 3;
  absl::Time next_renew = absl::Now() + renew_every;
  std::unique_lock<std::mutex> lock(mu_);
  while (!keeper_done_) {
    keeper_cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.cancel_poll),
                        [&] { return keeper_done_; });
    if (keeper_done_) break;
    lock.unlock();
    if (absl::Now() >= next_renew) {
      absl::Status renewed = store_->RenewLease(store::Kind::kJob, id, options_.owner,
                                                absl::ToUnixMicros(clock_->Now() + options_.lease));
      if (renewed.ok()) {
        next_renew = absl::Now() + renew_every;
      } else if (renewed.code() == absl::StatusCode::kAborted ||
                 renewed.code() == absl::StatusCode::kNotFound) {
        // Another replica took the job (this one stalled past its lease) or
        // it was deleted: stop, and write nothing more about it.
        lease_lost_ = true;
        stop_run_ = true;
        logger_->Error("lost the lease of the running job; stopping it here",
                       {{"job_id", id}, {"error", renewed.ToString()}});
        return;
      } else if (renewed.code() == absl::StatusCode::kUnimplemented) {
        next_renew = absl::InfiniteFuture();
      } else {
        // Transient (the database restarts): retry at the next tick; the
        // lease lasts options_.lease, several ticks.
        logger_->Warning("cannot renew the running job's lease; retrying",
                         {{"job_id", id}, {"error", renewed.ToString()}});
      }
    }
    // A cancel made on another replica reaches this one through the record.
    absl::StatusOr<v1::TuningJob> current = Get(id);
    lock.lock();
    if (current.ok() && current->state() == v1::TuningJob::CANCELLING && running_id_ == id &&
        !cancel_requested_) {
      cancel_requested_ = true;
      stop_run_ = true;
    }
  }
}

absl::StatusOr<v1::TuningJob::State> JobRunner::ReclaimLocked(const std::string& id) {
  std::string dropped_checkpoint;
  ASSIGN_OR_RETURN(v1::TuningJob job,
                   MutateLocked(id, [&](v1::TuningJob& j) -> absl::StatusOr<bool> {
                     if (j.state() == v1::TuningJob::CANCELLING) {
                       j.set_state(v1::TuningJob::CANCELLED);
                       SetTimestamp(clock_->Now(), j.mutable_end_time());
                       dropped_checkpoint = j.checkpoint_key();
                       j.clear_checkpoint_key();
                       return true;
                     }
                     if (j.state() != v1::TuningJob::RUNNING) return false;
                     j.set_state(v1::TuningJob::QUEUED);
                     j.set_restart_count(j.restart_count() + 1);
                     return true;
                   }));
  // The checkpoint in the file store, or (a job of an older version) the
  // one in the local job folder.
  std::error_code ec;
  const bool has_checkpoint =
      !job.checkpoint_key().empty() || fs::exists(JobDir(id) + "/checkpoint.safetensors", ec);
  if (job.state() == v1::TuningJob::CANCELLED) {
    files_->ReleaseCheckpoint(dropped_checkpoint);
    RemoveJobDir(id);
    EmitState(job, options_.shared_store
                       ? "cancelled (the replica running it stopped while cancelling)"
                       : "cancelled (server restarted while cancelling)");
  } else if (job.state() == v1::TuningJob::QUEUED) {
    const std::string who = options_.shared_store
                                ? "the replica running the job stopped renewing its lease"
                                : "server restarted while the job was running";
    v1::TuningJobEvent ev;
    ev.set_type(v1::TuningJobEvent::SERVER_RESTARTED);
    ev.set_level(v1::TuningJobEvent::WARNING);
    ev.set_state(v1::TuningJob::QUEUED);
    ev.set_message(has_checkpoint
                       ? absl::StrCat(who,
                                      "; it resumes from its last epoch checkpoint (after epoch ",
                                      job.progress().epoch(), ")")
                       : absl::StrCat(who,
                                      "; no checkpoint was written yet, so it restarts from "
                                      "epoch 0"));
    Emit(job, ev);
  }
  return job.state();
}

void JobRunner::Emit(const v1::TuningJob& job, v1::TuningJobEvent event) {
  const std::string job_id = IdOf(job);
  event.set_job(table_.NameOf(job_id));
  event.set_traceparent(job.traceparent());
  SetTimestamp(clock_->Now(), event.mutable_create_time());
  if (event.level() == v1::TuningJobEvent::LEVEL_UNSPECIFIED) {
    event.set_level(v1::TuningJobEvent::INFO);
  }
  absl::StatusOr<int64_t> appended = store_->AppendEvent(job_id, [&](int64_t id) {
    event.set_id(id);
    return event.SerializeAsString();
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++event_seq_;
  }
  events_cv_.notify_all();
  const std::string type = v1::TuningJobEvent::Type_Name(event.type());
  if (!appended.ok()) {
    // Watchers miss this event; the job record (what Get returns) still
    // holds the state, so the job itself goes on.
    logger_->Error("job event not stored", {{"job_id", job_id},
                                            {"type", type},
                                            {"message", event.message()},
                                            {"error", appended.status().ToString()}});
    return;
  }
  LogFields fields = {{"job_id", job_id}, {"type", type}, {"message", event.message()}};
  if (!event.traceparent().empty()) fields.emplace_back("traceparent", event.traceparent());
  logger_->Info("job event", fields);
}

void JobRunner::EmitState(const v1::TuningJob& job, const std::string& message) {
  v1::TuningJobEvent ev;
  ev.set_type(v1::TuningJobEvent::STATE_CHANGED);
  ev.set_state(job.state());
  ev.set_message(message);
  if (job.state() == v1::TuningJob::FAILED) ev.set_level(v1::TuningJobEvent::ERROR);
  *ev.mutable_tuning_job() = job;
  RefreshGauges();
  Emit(job, ev);
}

void JobRunner::RefreshGauges() {
  for (const std::string& state : ActiveJobStateNames()) {
    absl::StatusOr<int64_t> n = table_.Count({state});
    if (!n.ok()) {
      // The gauge keeps its last value until the next state change.
      logger_->Warning("cannot count jobs for the tuning_jobs gauge",
                       {{"state", state}, {"error", n.status().ToString()}});
      continue;
    }
    metrics_->tuning_jobs->WithLabels({absl::AsciiStrToLower(state)}).Set(*n);
  }
}

void JobRunner::WaitForEvents(const std::string& job_id, int64_t after_id, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  int64_t seen = event_seq_;
  lock.unlock();
  // The store is the truth; the sequence number only avoids busy polling.
  // A store error here only means the caller looks again after `timeout`.
  absl::StatusOr<std::vector<store::Event>> existing = store_->ListEvents(job_id, after_id, 1);
  if (existing.ok() && !existing->empty()) return;
  lock.lock();
  events_cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return event_seq_ != seen || stopping_.load(); });
}

absl::StatusOr<v1::TuningJob> JobRunner::Get(const std::string& id) const { return table_.Get(id); }

absl::StatusOr<RecordPage<v1::TuningJob>> JobRunner::List(int32_t page_size,
                                                          absl::string_view page_token,
                                                          const std::string& filter) const {
  RecordFilter f;
  ASSIGN_OR_RETURN(f.states, ParseJobStateFilter(filter));
  f.order = store::ListOptions::Order::kNewestFirst;
  return table_.ListPage(page_size, page_token, f);
}

absl::StatusOr<std::vector<v1::TuningJobEvent>> JobRunner::ListEvents(const std::string& id,
                                                                      int64_t after_id,
                                                                      int64_t limit) const {
  ASSIGN_OR_RETURN(std::vector<store::Event> stored, store_->ListEvents(id, after_id, limit));
  std::vector<v1::TuningJobEvent> events(stored.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    if (!events[i].ParseFromString(stored[i].data)) {
      ErrorDetail d;
      d.resource_type = "provp.v1.TuningJob";
      d.resource_name = table_.NameOf(id);
      return MakeError(
          absl::StatusCode::kDataLoss, "CORRUPT_RECORD",
          absl::StrCat("event ", stored[i].id, " of ", d.resource_name, " does not parse"), d);
    }
    // The store's id is the one page tokens and after_event_id refer to.
    events[i].set_id(stored[i].id);
  }
  return events;
}

absl::StatusOr<v1::TuningJob> JobRunner::Create(const v1::CreateTuningJobRequest& req,
                                                const std::string& traceparent) {
  const Limits& limits = options_.limits;
  if (!req.request_id().empty()) {
    ASSIGN_OR_RETURN(std::optional<v1::TuningJob> prior, table_.FindByRequestId(req.request_id()));
    if (prior.has_value()) return *prior;
  }
  std::string id = req.tuning_job_id().empty() ? "job-" + RandomHex(10) : req.tuning_job_id();
  RETURN_IF_ERROR(ValidateId(id, "tuning_job_id"));
  std::string out_id = req.output_prompt_set_id().empty() ? id : req.output_prompt_set_id();
  RETURN_IF_ERROR(ValidateId(out_id, "output_prompt_set_id"));
  const v1::TuningJob& in = req.tuning_job();
  if (in.dataset().empty()) {
    return InvalidArgument("MISSING_FIELD", "tuning_job.dataset is required", "tuning_job.dataset");
  }
  if (static_cast<int>(in.display_name().size()) > limits.max_name_length) {
    return InvalidArgument("NAME_TOO_LONG", "display_name is too long", "tuning_job.display_name");
  }
  ASSIGN_OR_RETURN(std::string ds_id, ParseName(in.dataset(), kDatasets, "tuning_job.dataset"));
  ASSIGN_OR_RETURN(v1::Dataset ds, datasets_->Get(ds_id));
  // Resolved now, with the core's rules: the job stores and reports what it
  // will run (the runner passes these values on unchanged).
  ASSIGN_OR_RETURN(v1::Hyperparameters resolved,
                   ResolveJobHyperparameters(in.hyperparameters(), ds.stats().max_shots(),
                                             ds.novel_class_names_size() > 0));
  if (!in.base_prompt_set().empty()) {
    return MakeError(absl::StatusCode::kUnimplemented, "WARM_START_UNSUPPORTED",
                     "base_prompt_set (warm start) is not supported by this server");
  }
  absl::StatusOr<v1::PromptSet> existing_output = prompt_sets_->Get(out_id);
  if (existing_output.ok()) {
    ErrorDetail d;
    d.resource_type = "provp.v1.PromptSet";
    d.resource_name = existing_output->name();
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                     absl::StrCat(d.resource_name, " already exists; set output_prompt_set_id"), d);
  }
  if (existing_output.status().code() != absl::StatusCode::kNotFound) {
    return existing_output.status();
  }
  std::lock_guard<std::mutex> lock(job_mu_);
  ASSIGN_OR_RETURN(bool taken, table_.Exists(id));
  if (taken) {
    ErrorDetail d;
    d.resource_type = "provp.v1.TuningJob";
    d.resource_name = table_.NameOf(id);
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                     absl::StrCat(d.resource_name, " already exists"), d);
  }
  ASSIGN_OR_RETURN(int64_t total, table_.Count());
  if (total >= limits.max_jobs) {
    return ResourceExhausted(
        "TOO_MANY_JOBS", "max_jobs",
        absl::StrCat("the server holds its limit of ", limits.max_jobs, " jobs; delete old ones"));
  }
  ASSIGN_OR_RETURN(int64_t queued, table_.Count({StateName(v1::TuningJob::QUEUED)}));
  if (queued >= limits.max_queued_jobs) {
    return ResourceExhausted(
        "JOB_QUEUE_FULL", "max_queued_jobs",
        absl::StrCat(queued, " jobs are queued (limit ", limits.max_queued_jobs, "); retry later"),
        /*retry_after_ms=*/60000);
  }
  v1::TuningJob job = in;
  *job.mutable_hyperparameters() = std::move(resolved);
  job.set_name(table_.NameOf(id));
  job.set_state(v1::TuningJob::QUEUED);
  job.clear_progress();
  job.clear_result();
  job.clear_error();
  job.set_output_prompt_set_id(out_id);
  job.set_restart_count(0);
  job.set_traceparent(traceparent);  // output only: what the caller sent is ignored
  const absl::Time now = clock_->Now();
  SetTimestamp(now, job.mutable_create_time());
  job.clear_start_time();
  job.clear_end_time();
  SetTimestamp(now, job.mutable_update_time());
  job.set_etag(RandomHex(12));
  // ALREADY_EXISTS (with ResourceInfo) when the id is taken.
  RETURN_IF_ERROR(
      table_.Insert(id, job, {StateName(job.state()), req.request_id(), absl::ToUnixMicros(now)}));
  EmitState(job, "job created");
  runner_cv_.notify_all();
  return job;
}

absl::StatusOr<v1::TuningJob> JobRunner::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(job_mu_);
  v1::TuningJob::State before = v1::TuningJob::STATE_UNSPECIFIED;
  // Compare-and-set: the job may be running on another replica, which
  // writes progress into the same record.
  ASSIGN_OR_RETURN(
      v1::TuningJob job, MutateLocked(id, [&](v1::TuningJob& j) -> absl::StatusOr<bool> {
        before = j.state();
        if (IsTerminal(j.state())) {
          return FailedPrecondition("JOB_TERMINAL", j.name(),
                                    absl::StrCat(j.name(), " is already ", StateName(j.state())));
        }
        if (j.state() == v1::TuningJob::CANCELLING) return false;
        if (j.state() == v1::TuningJob::QUEUED) {
          j.set_state(v1::TuningJob::CANCELLED);
          SetTimestamp(clock_->Now(), j.mutable_end_time());
          *j.mutable_error() = CancelledByUser();
          return true;
        }
        j.set_state(v1::TuningJob::CANCELLING);
        return true;
      }));
  if (before == v1::TuningJob::CANCELLING) return job;
  if (before == v1::TuningJob::QUEUED) {
    EmitState(job, "cancelled while queued");
    metrics_->tuning_finished->WithLabels({"cancelled"}).Increment();
    return job;
  }
  // RUNNING: the runner sees the flag at the next step (here at once; on
  // another replica its lease keeper reads the record within cancel_poll).
  EmitState(job, "cancel requested");
  {
    std::lock_guard<std::mutex> l(mu_);
    if (running_id_ == id) {
      cancel_requested_ = true;
      stop_run_ = true;
    }
  }
  return job;
}

absl::Status JobRunner::Delete(const std::string& id) {
  std::lock_guard<std::mutex> lock(job_mu_);
  ASSIGN_OR_RETURN(v1::TuningJob job, table_.Get(id));
  // An ended job never changes state again, so nothing (here or on another
  // replica) writes to it between this check and the delete.
  if (!IsTerminal(job.state())) {
    return FailedPrecondition(
        "JOB_NOT_ENDED", job.name(),
        absl::StrCat(job.name(), " is ", StateName(job.state()), "; cancel it, then delete it"));
  }
  RETURN_IF_ERROR(table_.Delete(id));
  // An ended job refers to no checkpoint; one a crash left is the sweep's.
  if (!job.checkpoint_key().empty()) files_->ReleaseCheckpoint(job.checkpoint_key());
  RemoveJobDir(id);
  logger_->Info("job deleted", {{"job_id", id}, {"state", StateName(job.state())}});
  return absl::OkStatus();
}

void JobRunner::Recover() {
  RequeueCrashedJobs();
  SweepEndedJobDirs();
}

void JobRunner::RequeueCrashedJobs() {
  // Claim the RUNNING/CANCELLING jobs whose lease is free or expired. With a
  // shared store a live replica's jobs keep their leases; as the store's
  // only user every lease is this process's dead predecessor's.
  for (;;) {
    const absl::Time now = clock_->Now();
    store::ClaimOptions claim;
    claim.states = {StateName(v1::TuningJob::RUNNING), StateName(v1::TuningJob::CANCELLING)};
    claim.owner = options_.owner;
    claim.now_us =
        options_.shared_store ? absl::ToUnixMicros(now) : std::numeric_limits<int64_t>::max();
    claim.lease_until_us = absl::ToUnixMicros(now + options_.lease);
    absl::StatusOr<std::optional<store::Record>> claimed = store_->Claim(store::Kind::kJob, claim);
    if (claimed.status().code() == absl::StatusCode::kUnimplemented) break;  // no leases
    if (!claimed.ok()) {
      logger_->Error("job recovery failed", {{"error", claimed.status().ToString()}});
      return;
    }
    if (!claimed->has_value()) {
      RefreshGauges();
      return;
    }
    const std::string id = (*claimed)->id;
    absl::StatusOr<v1::TuningJob::State> state;
    {
      std::lock_guard<std::mutex> lock(job_mu_);
      state = ReclaimLocked(id);
    }
    ReleaseLease(id);
    if (!state.ok()) {
      // Left as it is; the next start (or another replica) retries.
      logger_->Error("recovery could not requeue a job",
                     {{"job_id", id}, {"error", state.status().ToString()}});
      return;
    }
  }
  // A store without leases: one process, so every RUNNING job is stale.
  RecordFilter filter;
  filter.states = {StateName(v1::TuningJob::RUNNING), StateName(v1::TuningJob::CANCELLING)};
  absl::StatusOr<std::vector<v1::TuningJob>> jobs = table_.List(filter);
  if (!jobs.ok()) {
    // Nothing is lost: the jobs stay as they are and the next start retries.
    logger_->Error("job recovery failed", {{"error", jobs.status().ToString()}});
    return;
  }
  std::lock_guard<std::mutex> lock(job_mu_);
  for (const v1::TuningJob& job : *jobs) {
    absl::StatusOr<v1::TuningJob::State> state = ReclaimLocked(IdOf(job));
    if (!state.ok()) {
      // Nothing is lost: the job stays as it is and the next start retries.
      logger_->Error("recovery could not requeue a job; the next start retries",
                     {{"job_id", IdOf(job)}, {"error", state.status().ToString()}});
    }
  }
  RefreshGauges();
}

bool JobRunner::RunNextQueued() {
  const absl::Time now = clock_->Now();
  store::ClaimOptions claim;
  claim.states = {StateName(v1::TuningJob::QUEUED), StateName(v1::TuningJob::RUNNING),
                  StateName(v1::TuningJob::CANCELLING)};
  claim.owner = options_.owner;
  claim.now_us = absl::ToUnixMicros(now);
  claim.lease_until_us = absl::ToUnixMicros(now + options_.lease);
  absl::StatusOr<std::optional<store::Record>> claimed = store_->Claim(store::Kind::kJob, claim);
  if (claimed.status().code() == absl::StatusCode::kUnimplemented) {
    // A store without leases has this process as its only runner.
    RecordFilter filter;
    filter.states = {StateName(v1::TuningJob::QUEUED)};
    filter.order = store::ListOptions::Order::kOldestFirst;
    absl::StatusOr<std::vector<v1::TuningJob>> next = table_.List(filter, /*limit=*/1);
    if (!next.ok()) {
      logger_->Error("cannot read the job queue", {{"error", next.status().ToString()}});
      return false;
    }
    if (next->empty()) return false;
    return RunJob(IdOf(next->front()), /*leased=*/false);
  }
  if (!claimed.ok()) {
    logger_->Error("cannot claim from the job queue", {{"error", claimed.status().ToString()}});
    return false;
  }
  if (!claimed->has_value()) return false;
  const std::string id = (*claimed)->id;
  if ((*claimed)->state != StateName(v1::TuningJob::QUEUED)) {
    // Its runner died (its lease expired): requeue or finish cancelling it,
    // then run it here from its last checkpoint.
    absl::StatusOr<v1::TuningJob::State> state;
    {
      std::lock_guard<std::mutex> lock(job_mu_);
      state = ReclaimLocked(id);
    }
    if (!state.ok()) {
      logger_->Error("cannot take over a job whose runner died",
                     {{"job_id", id}, {"error", state.status().ToString()}});
      ReleaseLease(id);
      return false;
    }
    if (*state != v1::TuningJob::QUEUED) {
      ReleaseLease(id);
      return true;
    }
  }
  return RunJob(id, /*leased=*/true);
}

void JobRunner::RunnerLoop() {
  while (!stopping_.load()) {
    if (RunNextQueued()) continue;
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_.load()) break;
    runner_cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.idle_poll));
  }
}

bool JobRunner::RunJob(const std::string& id, bool leased) {
  v1::TuningJob job;
  {
    std::lock_guard<std::mutex> lock(job_mu_);
    bool started = false;
    bool first_start = false;
    const absl::Time now = clock_->Now();
    absl::StatusOr<v1::TuningJob> running =
        MutateLocked(id, [&](v1::TuningJob& j) -> absl::StatusOr<bool> {
          // Cancelled between the claim and now.
          started = j.state() == v1::TuningJob::QUEUED;
          if (!started) return false;
          j.set_state(v1::TuningJob::RUNNING);
          first_start = !j.has_start_time();
          if (first_start) SetTimestamp(now, j.mutable_start_time());
          return true;
        });
    if (!running.ok()) {
      // It stays QUEUED; a runner tries again after its idle poll.
      logger_->Error("cannot mark a job RUNNING",
                     {{"job_id", id}, {"error", running.status().ToString()}});
      if (leased) ReleaseLease(id);
      return false;
    }
    if (!started) {
      if (leased) ReleaseLease(id);
      return true;
    }
    job = *std::move(running);
    if (first_start) {
      metrics_->tuning_queue_wait->Observe(
          absl::ToDoubleSeconds(now - FromTimestamp(job.create_time())));
    }
    std::lock_guard<std::mutex> l(mu_);
    running_id_ = id;
    cancel_requested_ = false;
    stop_run_ = stopping_.load();
    lease_lost_ = false;
    keeper_done_ = false;
  }
  std::thread keeper;
  if (leased) keeper = std::thread([this, id] { KeepLease(id); });
  EmitState(job, "training started");
  const absl::Time run_start = clock_->Now();
  absl::StatusOr<engine::TuningOutcome> outcome = Train(id, job);
  bool cancel_requested, shutting_down;
  {
    std::lock_guard<std::mutex> l(mu_);
    cancel_requested = cancel_requested_;
    shutting_down = stopping_.load();
    running_id_.clear();
    keeper_done_ = true;
  }
  keeper_cv_.notify_all();
  if (keeper.joinable()) keeper.join();
  if (lease_lost_) {
    // Another replica owns the job now and resumes it from the checkpoint;
    // anything written here would race with it.
    metrics_->tuning_progress->Set(0);
    logger_->Warning("stopped a job whose lease another replica took", {{"job_id", id}});
    return true;
  }
  std::lock_guard<std::mutex> lock(job_mu_);
  // The record may have moved on (CANCELLING, progress) while training.
  absl::StatusOr<v1::TuningJob> current = Get(id);
  if (current.ok()) {
    job = *std::move(current);
    // A cancel stored by another replica after the keeper's last look.
    if (job.state() == v1::TuningJob::CANCELLING && !outcome.ok()) cancel_requested = true;
  } else {
    logger_->Warning("cannot re-read a finished job; finishing from the runner's copy",
                     {{"job_id", id}, {"error", current.status().ToString()}});
  }
  FinishLocked(id, job, outcome, cancel_requested, shutting_down, run_start);
  if (leased) ReleaseLease(id);
  return true;
}

absl::StatusOr<engine::TuningOutcome> JobRunner::Train(const std::string& id, v1::TuningJob& job) {
  ASSIGN_OR_RETURN(std::string ds_id, ParseName(job.dataset(), kDatasets, "dataset"));
  absl::StatusOr<v1::Dataset> ds = datasets_->Get(ds_id);
  if (!ds.ok()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "DATASET_MISSING",
                     absl::StrCat(job.dataset(), " no longer exists"));
  }
  auto manifest = datasets_->ReadManifest(*ds);
  if (!manifest.ok() && manifest.status().code() == absl::StatusCode::kDataLoss) {
    return MakeError(absl::StatusCode::kDataLoss, "DATASET_DAMAGED",
                     absl::StrCat("dataset files: ", manifest.status().message()));
  }
  if (!manifest.ok()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "DATASET_MISSING",
                     absl::StrCat("dataset files: ", manifest.status().message()));
  }
  // Every image is there before training starts (a missing one fails here,
  // with its name, not in the middle of an epoch).
  for (auto split : {data::Split::kTrain, data::Split::kVal, data::Split::kTest}) {
    for (const auto& it : manifest->items(split)) {
      std::error_code ec;
      absl::StatusOr<bool> there = store::IsContentKey(it.path)
                                       ? files_->files()->Contains(it.path)
                                       : absl::StatusOr<bool>(fs::exists(it.path, ec));
      if (!there.ok()) return there.status();
      if (!*there) {
        return MakeError(
            absl::StatusCode::kFailedPrecondition, "DATASET_MISSING",
            absl::StrCat("dataset files: image ", it.path, " of ", job.dataset(), " is missing"));
      }
    }
  }
  engine::TuningSpec spec;
  spec.job_id = id;
  spec.class_names = manifest->class_names;
  std::set<std::string> novel(ds->novel_class_names().begin(), ds->novel_class_names().end());
  for (size_t c = 0; c < spec.class_names.size(); ++c) {
    if (novel.count(spec.class_names[c])) spec.novel_classes.push_back(static_cast<int>(c));
  }
  for (auto [split, es] : {std::pair{data::Split::kTrain, engine::Split::kTrain},
                           std::pair{data::Split::kVal, engine::Split::kVal},
                           std::pair{data::Split::kTest, engine::Split::kTest}}) {
    for (const auto& it : manifest->items(split)) spec.items.push_back({it.path, it.label, es});
  }
  const int64_t max_pixels = options_.limits.max_pixels_per_image;
  // Uploaded images are read by content key (checked on every read: a
  // damaged one fails the job with DATA_LOSS), registered ones by path.
  store::FileStore* files = files_->files();
  const uint64_t max_image_bytes = static_cast<uint64_t>(options_.limits.max_message_bytes);
  spec.load_image = [max_pixels, files, max_image_bytes](
                        const engine::TuningItem& item) -> absl::StatusOr<engine::Image> {
    image::DecodeOptions o;
    o.max_pixels = max_pixels;
    image::RgbImage rgb;
    if (store::IsContentKey(item.path)) {
      ASSIGN_OR_RETURN(std::string bytes, files->Read(item.path, max_image_bytes));
      ASSIGN_OR_RETURN(rgb, image::DecodeImage(bytes, o));
    } else {
      ASSIGN_OR_RETURN(rgb, image::DecodeImageFile(item.path, o));
    }
    return engine::Image{rgb.height, rgb.width, std::move(rgb.pixels)};
  };
  // Jobs created before Create resolved their values are resolved here the
  // same way; for the others this gives back exactly what they store.
  const v1::Hyperparameters& hp = job.hyperparameters();
  const train::HyperparameterRequest req = RequestOf(hp, !spec.novel_classes.empty());
  spec.shots = static_cast<int>(req.shots);
  spec.num_prompts = static_cast<int>(req.num_prompts.value_or(0));
  spec.epochs = static_cast<int>(req.epochs.value_or(0));
  spec.learning_rate = req.learning_rate.value_or(0.0);
  spec.batch_size = static_cast<int>(req.batch_size.value_or(0));
  spec.seed = req.seed;
  spec.variant = req.variant;
  spec.preset = req.preset;
  spec.use_feature_reformation = req.use_ref;
  spec.alpha = req.alpha;
  spec.ref_lambda = req.ref_lambda;
  spec.weight_decay = req.weight_decay;
  spec.min_crop_scale = req.min_crop_scale;
  spec.selection = req.selection;
  std::error_code ec;
  fs::create_directories(JobDir(id), ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create ", JobDir(id), ": ", ec.message()));
  }
  spec.checkpoint_path = JobDir(id) + "/checkpoint.safetensors";
  spec.output_path = JobDir(id) + "/result.pset";
  // The engine works on local files; the file store holds what another
  // replica (or this one after a restart) resumes from.
  RETURN_IF_ERROR(FetchCheckpoint(id, job));

  absl::Time last_save = absl::InfinitePast();
  absl::Time epoch_start = clock_->Now();
  engine::TuningCallbacks cb;
  cb.stop = &stop_run_;
  cb.on_message = [&](const std::string& msg) {
    v1::TuningJobEvent ev;
    ev.set_type(v1::TuningJobEvent::MESSAGE);
    ev.set_message(msg);
    Emit(job, ev);
  };
  cb.on_progress = [&](const engine::TuningProgress& p) {
    const absl::Time now = clock_->Now();
    // Step reports are saved at most once a second; epoch ends always.
    if (!p.epoch_end && now - last_save < absl::Seconds(1)) return;
    last_save = now;
    v1::TrainingMetrics m;
    m.set_epoch(p.epoch);
    m.set_total_epochs(p.total_epochs);
    m.set_step(p.step);
    m.set_total_steps(p.total_steps);
    m.set_learning_rate(p.learning_rate);
    m.set_loss(p.loss);
    m.set_loss_xe(p.loss_xe);
    m.set_loss_ref(p.loss_ref);
    m.set_train_accuracy(p.train_accuracy);
    m.set_images_per_second(p.images_per_second);
    m.set_eta_seconds(p.eta_seconds);
    if (p.validation_accuracy >= 0) m.set_validation_accuracy(p.validation_accuracy);
    // The engine wrote the epoch's checkpoint before reporting its end: it
    // goes into the file store (pinned until the record names it) and the
    // progress write below records its key.
    std::optional<FileRefs::Pin> pin;
    std::string checkpoint, replaced;
    bool recorded = false;
    if (p.epoch_end) {
      pin.emplace(files_->NewPin());
      absl::StatusOr<std::string> key = files_->PutFile(*pin, spec.checkpoint_path);
      if (key.ok()) {
        checkpoint = *key;
      } else {
        // The record keeps the previous one; a resume starts from there.
        logger_->Warning("cannot store a job checkpoint in the file store",
                         {{"job_id", id}, {"error", key.status().ToString()}});
      }
    }
    {
      std::lock_guard<std::mutex> lock(job_mu_);
      // Compare-and-set, so a cancel stored meanwhile by another replica
      // stays; nothing is written once the lease is lost.
      absl::StatusOr<v1::TuningJob> saved =
          MutateLocked(id, [&](v1::TuningJob& cur) -> absl::StatusOr<bool> {
            recorded = false;
            if (lease_lost_) return false;
            if (!checkpoint.empty() && cur.checkpoint_key() != checkpoint) {
              replaced = cur.checkpoint_key();
              cur.set_checkpoint_key(checkpoint);
              recorded = true;
            }
            v1::Progress* pr = cur.mutable_progress();
            pr->set_epoch(p.epoch_end ? p.epoch : p.epoch - 1);
            pr->set_total_epochs(p.total_epochs);
            pr->set_step(p.step);
            pr->set_total_steps(p.total_steps);
            pr->set_fraction(p.total_steps > 0 ? static_cast<double>(p.step) / p.total_steps : 0);
            SetTimestamp(now + absl::Seconds(p.eta_seconds), pr->mutable_estimated_finish_time());
            auto& lm = *pr->mutable_last_metrics();
            lm["loss"] = p.loss;
            lm["loss_xe"] = p.loss_xe;
            lm["loss_ref"] = p.loss_ref;
            lm["learning_rate"] = p.learning_rate;
            lm["train_accuracy"] = p.train_accuracy;
            if (p.validation_accuracy >= 0) lm["validation_accuracy"] = p.validation_accuracy;
            lm["images_per_second"] = p.images_per_second;
            return true;
          });
      if (saved.ok()) {
        job = *std::move(saved);
      } else {
        // Progress only: the next report (or the end) writes it again.
        recorded = false;
        logger_->Warning("job progress not stored",
                         {{"job_id", id}, {"error", saved.status().ToString()}});
      }
    }
    pin.reset();
    if (recorded) {
      files_->ReleaseCheckpoint(replaced);
    } else if (!checkpoint.empty() && job.checkpoint_key() != checkpoint) {
      files_->ReleaseCheckpoint(checkpoint);  // never recorded
    }
    if (lease_lost_) return;
    v1::TuningJobEvent ev;
    ev.set_type(p.epoch_end ? v1::TuningJobEvent::CHECKPOINT : v1::TuningJobEvent::METRICS);
    ev.set_message(
        p.epoch_end
            ? absl::StrCat("epoch ", p.epoch, "/", p.total_epochs, " done; checkpoint written",
                           p.validation_accuracy >= 0
                               ? absl::StrCat("; validation accuracy ", p.validation_accuracy)
                               : std::string())
            : absl::StrCat("epoch ", p.epoch, " step ", p.step, "/", p.total_steps));
    *ev.mutable_metrics() = m;
    Emit(job, ev);
    metrics_->tuning_progress->Set(p.total_steps > 0 ? static_cast<double>(p.step) / p.total_steps
                                                     : 0);
    metrics_->tuning_loss->Set(p.loss);
    if (p.epoch_end) {
      metrics_->tuning_epoch_duration->Observe(absl::ToDoubleSeconds(now - epoch_start));
      epoch_start = now;
    }
  };
  // The engine should turn its exceptions into a Status; one that escapes
  // must fail this job, not end the runner thread (and the process).
  try {
    return engine_->RunTuning(spec, cb);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the tuning engine threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("the tuning engine threw a non-standard exception");
  }
}

void JobRunner::FinishLocked(const std::string& id, v1::TuningJob& job,
                             const absl::StatusOr<engine::TuningOutcome>& outcome,
                             bool cancel_requested, bool shutting_down, absl::Time run_start) {
  const std::string final_label = [&]() -> std::string {
    if (outcome.ok()) {
      // Publish the prompt set: its file into the file store (pinned until
      // the record names it), then the record.
      const std::string out_id = job.output_prompt_set_id();
      FileRefs::Pin pin = files_->NewPin();
      absl::StatusOr<std::string> key = files_->PutFile(pin, JobDir(id) + "/result.pset");
      v1::PromptSet ps;
      ps.set_display_name(job.display_name());
      ps.set_dataset(job.dataset());
      ps.set_source_tuning_job(job.name());
      for (const auto& n : outcome->prompt_set.base_class_names) ps.add_base_class_names(n);
      for (const auto& n : outcome->prompt_set.novel_class_names) ps.add_novel_class_names(n);
      for (const auto& t : outcome->prompt_set.templates) ps.add_templates(t);
      const engine::TuningEvaluation& e = outcome->evaluation;
      v1::Evaluation* ev = ps.mutable_evaluation();
      ev->set_base_accuracy(e.base_accuracy);
      ev->set_novel_accuracy(e.novel_accuracy);
      ev->set_harmonic_mean(e.harmonic_mean);
      ev->set_num_base_images(e.num_base_images);
      ev->set_num_novel_images(e.num_novel_images);
      ev->set_zero_shot_base_accuracy(e.zero_shot_base_accuracy);
      ev->set_zero_shot_novel_accuracy(e.zero_shot_novel_accuracy);
      for (const auto& c : e.per_class) {
        auto* pc = ev->add_per_class_accuracy();
        pc->set_class_name(c.class_name);
        pc->set_accuracy(c.accuracy);
        pc->set_num_images(c.num_images);
        pc->set_novel(c.novel);
      }
      absl::StatusOr<v1::PromptSet> registered =
          !key.ok() ? absl::StatusOr<v1::PromptSet>(absl::Status(
                          key.status().code(),
                          absl::StrCat("storing the result: ", key.status().message())))
                    : prompt_sets_->Register(ps, out_id, *key, options_.auto_load_prompt_sets);
      // A set already registered under out_id is this job's own, published
      // before a crash that kept the record RUNNING; the rerun succeeds.
      const bool published = registered.ok() ||
                             registered.status().code() == absl::StatusCode::kAlreadyExists ||
                             prompt_sets_->Get(out_id).ok();
      if (!published) {
        job.set_state(v1::TuningJob::FAILED);
        *job.mutable_error() = ToRpcStatus(WithReason(registered.status(), "PUBLISH_FAILED"));
        return "failed";
      }
      if (!registered.ok()) {
        logger_->Warning("job result was already published",
                         {{"job_id", id}, {"detail", registered.status().ToString()}});
      }
      job.set_state(v1::TuningJob::SUCCEEDED);
      job.mutable_result()->set_prompt_set(absl::StrCat(kPromptSets, "/", out_id));
      *job.mutable_result()->mutable_evaluation() = *ev;
      job.mutable_progress()->set_fraction(1.0);
      job.mutable_progress()->set_epoch(outcome->epochs_completed);
      job.mutable_result()->set_selected_epoch(outcome->selected_epoch);
      if (outcome->best_validation_accuracy >= 0) {
        job.mutable_result()->set_best_validation_accuracy(outcome->best_validation_accuracy);
      }
      // Uploaded images by their name inside the dataset; registered ones
      // by the path they were registered with.
      absl::StatusOr<std::string> ds_id = ParseName(job.dataset(), kDatasets, "dataset");
      const std::string ds_dir =
          absl::StrCat(options_.data_dir, "/datasets/", ds_id.ok() ? *ds_id : "", "/");
      for (const std::string& path : outcome->train_image_paths) {
        job.mutable_result()->add_train_images(
            absl::StartsWith(path, ds_dir) ? path.substr(ds_dir.size()) : path);
      }
      // What the engine ran (equal to what Create resolved; an engine that
      // does not say keeps the stored values).
      if (!outcome->hyperparameters.preset.empty()) {
        const std::string device = job.hyperparameters().device();
        *job.mutable_hyperparameters() = ToProto(outcome->hyperparameters, device);
      }
      return "succeeded";
    }
    if (cancel_requested) {
      job.set_state(v1::TuningJob::CANCELLED);
      *job.mutable_error() = CancelledByUser();
      return "cancelled";
    }
    if (shutting_down) return "";
    job.set_state(v1::TuningJob::FAILED);
    *job.mutable_error() = ToRpcStatus(WithReason(outcome.status(), "TRAINING_FAILED"));
    return "failed";
  }();
  if (final_label.empty()) {
    // Graceful shutdown: back to QUEUED; the next start resumes it.
    job.set_state(v1::TuningJob::QUEUED);
    absl::Status saved = SaveLocked(job);
    if (!saved.ok()) {
      // Left RUNNING, recovery at the next start requeues it all the same.
      logger_->Error("cannot requeue the running job at shutdown; recovery requeues it",
                     {{"job_id", id}, {"error", saved.ToString()}});
      return;
    }
    v1::TuningJobEvent ev;
    ev.set_type(v1::TuningJobEvent::STATE_CHANGED);
    ev.set_state(v1::TuningJob::QUEUED);
    ev.set_level(v1::TuningJobEvent::WARNING);
    ev.set_message(
        "server shutting down; the job resumes from its last epoch checkpoint on the "
        "next start");
    Emit(job, ev);
    return;
  }
  SetTimestamp(clock_->Now(), job.mutable_end_time());
  // A finished job refers to no checkpoint; it goes once this is stored.
  const std::string checkpoint = job.checkpoint_key();
  job.clear_checkpoint_key();
  absl::Status saved = SaveLocked(job);
  // One retry covers a transient failure (a busy database, a dropped
  // connection to a remote store).
  if (!saved.ok()) saved = SaveLocked(job);
  if (!saved.ok()) {
    // The record still says RUNNING. Once its lease is free (released when
    // this run ends, or expired after a crash) a runner takes the job over,
    // requeues it and reruns it from its checkpoint; the rerun finds its
    // prompt set already published and ends SUCCEEDED.
    logger_->Error(
        "job finished but its final state was not stored; the record stays RUNNING "
        "until a runner takes the job over",
        {{"job_id", id}, {"state", StateName(job.state())}, {"error", saved.ToString()}});
    metrics_->tuning_progress->Set(0);
    return;
  }
  files_->ReleaseCheckpoint(checkpoint);
  RemoveJobDir(id);
  EmitState(job, absl::StrCat("job ", final_label));
  metrics_->tuning_finished->WithLabels({final_label}).Increment();
  if (final_label == "failed") {
    metrics_->tuning_failures
        ->WithLabels({GoCodeName(static_cast<absl::StatusCode>(job.error().code()))})
        .Increment();
  }
  metrics_->tuning_job_duration->Observe(absl::ToDoubleSeconds(clock_->Now() - run_start));
  metrics_->tuning_progress->Set(0);
  logger_->Info("job finished", {{"job_id", id}, {"state", final_label}});
}

}  // namespace provp::server
