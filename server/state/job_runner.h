// Tuning jobs: creation with validation and limits, one runner (one job at a
// time per device; others wait QUEUED), progress as durable events,
// cancellation, and crash recovery (RUNNING jobs go back to QUEUED with a
// SERVER_RESTARTED event and resume from their last epoch checkpoint).
// Watchers block in WaitForEvents until the log grows.
//
// Jobs are taken under leases (store::Store::Claim), so several replicas
// can share one store's queue: the runner claims the oldest QUEUED job, or
// a RUNNING/CANCELLING one whose lease expired (its replica died), and a
// keeper thread renews the lease while the job trains and polls the record
// for a cancel made on another replica. A runner that loses its lease stops
// and writes nothing more. Record writes are compare-and-set, so a cancel
// from another replica is never overwritten by progress.
//
// Collaborators come in through the constructor and must outlive the
// runner. Start() runs jobs on a thread of its own; tests call Recover()
// and RunNextQueued() on their own thread instead, so the state machine is
// driven step by step without sleeping.
// Thread-safe: job records are read-modify-written under job_mu_; the
// runner's wake-up and the running job's flags are guarded by mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/engine/engine.h"
#include "core/store/store.h"
#include "core/util/clock.h"
#include "provp/v1/tuning.pb.h"
#include "server/state/dataset_registry.h"
#include "server/state/file_refs.h"
#include "server/state/limits.h"
#include "server/state/logging.h"
#include "server/state/prompt_set_registry.h"
#include "server/state/records.h"
#include "server/state/server_metrics.h"

namespace provp::server {

struct JobRunnerOptions {
  // The engine's working files (epoch checkpoint, result) are in
  // <data_dir>/jobs/<id>/, removed when the job ends; each epoch's
  // checkpoint and the result go into the file store, and the job record
  // names the checkpoint's key (TuningJob.checkpoint_key), so any replica
  // resumes from it.
  std::string data_dir;
  Limits limits;
  // Load every prompt set a job produces.
  bool auto_load_prompt_sets = true;
  // How long the runner thread sleeps between looks at an empty queue
  // (Create wakes it at once; this only bounds a missed wake-up, or, with a
  // shared store, a job created on another replica).
  absl::Duration idle_poll = absl::Milliseconds(500);
  // Other processes use the store too (PostgreSQL). false: this process is
  // the store's only user, so at start every lease is its dead
  // predecessor's and recovery takes them all.
  bool shared_store = false;
  // This process's name in leases; unique per process.
  std::string owner = "local";
  // A claimed job is this runner's for `lease` after each renewal; renewed
  // every lease / 3. Another replica resumes the job this long after the
  // last renewal of a runner that died.
  absl::Duration lease = absl::Seconds(15);
  // How often the keeper looks for a cancel made on another replica.
  absl::Duration cancel_poll = absl::Seconds(1);
};

// "state=QUEUED OR state=RUNNING" -> {"QUEUED", "RUNNING"}; "" -> {}.
// INVALID_ARGUMENT (INVALID_FILTER) for anything else.
absl::StatusOr<std::vector<std::string>> ParseJobStateFilter(const std::string& filter);

class JobRunner {
 public:
  JobRunner(store::Store* store, FileRefs* files, engine::Engine* engine, DatasetRegistry* datasets,
            PromptSetRegistry* prompt_sets, const util::Clock* clock, ServerMetrics* metrics,
            Logger* logger, JobRunnerOptions options);
  ~JobRunner();

  // Recover(), then runs queued jobs on the runner thread until Stop().
  void Start();
  // Graceful stop (SIGTERM): the running job stops at its next step, keeps
  // its last epoch checkpoint and goes back to QUEUED to resume on the next
  // start; watchers are woken. Idempotent.
  void Stop();

  // Jobs left RUNNING/CANCELLING by a crash whose lease is free or expired
  // (with a shared store, a live replica's jobs are left alone): RUNNING ->
  // QUEUED (restart count + 1, SERVER_RESTARTED event), CANCELLING ->
  // CANCELLED. Then removes the working folders of jobs that ended or are
  // gone (SweepEndedJobDirs).
  void Recover();
  // Claims the oldest QUEUED job (or one whose runner's lease expired,
  // which is requeued first) and runs it to its end on the calling thread.
  // false when none ran: the queue is empty, or the store failed (logged).
  bool RunNextQueued();

  // `traceparent`: the W3C trace context of the creating call ("" for
  // none), stored on the job and copied onto every event it emits.
  absl::StatusOr<v1::TuningJob> Create(const v1::CreateTuningJobRequest& request,
                                       const std::string& traceparent = "");
  absl::StatusOr<v1::TuningJob> Get(const std::string& id) const;
  // Newest first; `filter` as ParseJobStateFilter reads it.
  absl::StatusOr<RecordPage<v1::TuningJob>> List(int32_t page_size, absl::string_view page_token,
                                                 const std::string& filter) const;
  absl::StatusOr<v1::TuningJob> Cancel(const std::string& id);
  // Deletes an ended job's record and events, and anything of it left on
  // disk (DeleteTuningJob). FAILED_PRECONDITION JOB_NOT_ENDED for a job
  // that has not ended, NOT_FOUND for an unknown one.
  absl::Status Delete(const std::string& id);
  // Events with id > after_id, oldest first, at most `limit` (<= 0 = all).
  // DATA_LOSS when a stored event does not parse.
  absl::StatusOr<std::vector<v1::TuningJobEvent>> ListEvents(const std::string& id,
                                                             int64_t after_id, int64_t limit) const;

  // Blocks until the job has an event with id > after_id, `timeout` passes
  // or the runner stops.
  void WaitForEvents(const std::string& job_id, int64_t after_id, absl::Duration timeout);
  bool stopping() const { return stopping_.load(); }

 private:
  // Stamps update time and etag and writes the record (keeping its request
  // id). Requires job_mu_.
  absl::Status SaveLocked(v1::TuningJob& job);
  // Read-modify-write of the stored job under compare-and-set, retried when
  // another replica wrote in between: `change` edits the fresh copy and
  // returns whether to write it (or an error to return). Returns the job as
  // stored. Requires job_mu_.
  using JobChange = std::function<absl::StatusOr<bool>(v1::TuningJob&)>;
  absl::StatusOr<v1::TuningJob> MutateLocked(const std::string& id, const JobChange& change);
  // A claimed RUNNING/CANCELLING job whose runner died: RUNNING -> QUEUED
  // (restart count + 1, SERVER_RESTARTED event), CANCELLING -> CANCELLED.
  // Returns the new state. Requires job_mu_.
  absl::StatusOr<v1::TuningJob::State> ReclaimLocked(const std::string& id);
  // The running job's lease keeper (a thread during RunJob): renews the
  // lease, stops the run when it is lost or a cancel arrives elsewhere.
  void KeepLease(const std::string& id);
  void ReleaseLease(const std::string& id);
  // Appends an event of `job` (its name and traceparent are set on it); a
  // failure is logged (the record stays the truth, so callers go on).
  void Emit(const v1::TuningJob& job, v1::TuningJobEvent event);
  void EmitState(const v1::TuningJob& job, const std::string& message);
  // Sets provp_tuning_jobs{state} from the store.
  void RefreshGauges();
  void RunnerLoop();
  // false when the job could not be started (no longer QUEUED, or the
  // store failed). `leased`: this runner holds the job's lease.
  bool RunJob(const std::string& id, bool leased);
  // Runs the engine for a job marked RUNNING; progress goes to the record
  // and the event log as it comes.
  absl::StatusOr<engine::TuningOutcome> Train(const std::string& id, v1::TuningJob& job);
  // SUCCEEDED/FAILED/CANCELLED, or QUEUED again on shutdown, from the
  // engine's outcome; saves the record and reports it. Requires job_mu_.
  void FinishLocked(const std::string& id, v1::TuningJob& job,
                    const absl::StatusOr<engine::TuningOutcome>& outcome, bool cancel_requested,
                    bool shutting_down, absl::Time run_start);
  std::string JobDir(const std::string& id) const;
  void RemoveJobDir(const std::string& id);
  // The first half of Recover.
  void RequeueCrashedJobs();
  // Removes the working folders (<data-dir>/jobs/<id>/) of jobs that have
  // ended or no longer exist: a crash between storing a job's end and
  // removing its folder would otherwise leave its local checkpoint and
  // result file for good. Folders of unfinished jobs stay (they resume).
  void SweepEndedJobDirs();
  // Copies the checkpoint the record names into the job folder (a
  // checkpoint that cannot be read is reported and training starts over).
  absl::Status FetchCheckpoint(const std::string& id, const v1::TuningJob& job);

  // Constant after construction.
  store::Store* const store_;
  const RecordTable<v1::TuningJob> table_;
  FileRefs* const files_;
  engine::Engine* const engine_;
  DatasetRegistry* const datasets_;
  PromptSetRegistry* const prompt_sets_;
  const util::Clock* const clock_;
  ServerMetrics* const metrics_;
  Logger* const logger_;
  const JobRunnerOptions options_;

  // Serialises job record read-modify-writes.
  std::mutex job_mu_;

  std::mutex mu_;
  std::condition_variable runner_cv_;
  std::condition_variable events_cv_;
  // Guarded by mu_.
  int64_t event_seq_ = 0;
  // The running job (empty when idle) and whether a cancel asked it to stop.
  std::string running_id_;
  bool cancel_requested_ = false;

  std::atomic<bool> stopping_{false};
  // The running job's stop flag, polled by the engine between steps.
  std::atomic<bool> stop_run_{false};
  // Set by the keeper when another owner took the running job's lease.
  std::atomic<bool> lease_lost_{false};
  // Guarded by mu_: tells the keeper of the running job to end.
  bool keeper_done_ = false;
  std::condition_variable keeper_cv_;
  std::thread runner_;
};

}  // namespace provp::server
