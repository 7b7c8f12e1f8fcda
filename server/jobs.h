// Tuning jobs: creation with validation and limits, the single runner
// thread (one job at a time per device; others wait QUEUED), progress as
// durable events, cancellation, and crash recovery (RUNNING jobs go back to
// QUEUED with a SERVER_RESTARTED event and resume from their last epoch
// checkpoint). Watchers block in WaitForEvents until the log grows.
// Thread-safe: job records are read-modify-written under one mutex.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "provp/v1/tuning.pb.h"
#include "server/rpc.h"

namespace provp::server {

class JobManager {
 public:
  explicit JobManager(ServerEnv* env);
  ~JobManager();

  // Recovers jobs left RUNNING/CANCELLING by a crash and starts the runner.
  void Start();
  // Graceful stop (SIGTERM): the running job stops at its next step, keeps
  // its last epoch checkpoint and goes back to QUEUED to resume on the next
  // start; watchers are woken. Idempotent.
  void Stop();

  absl::StatusOr<v1::TuningJob> Create(const v1::CreateTuningJobRequest& request);
  absl::StatusOr<v1::TuningJob> Get(const std::string& id);
  absl::StatusOr<v1::TuningJob> Cancel(const std::string& id);

  // Blocks until the job has an event with id > after_id, `timeout` passes
  // or the manager stops.
  void WaitForEvents(const std::string& job_id, int64_t after_id, absl::Duration timeout);
  bool stopping() const { return stopping_.load(); }

  static bool IsTerminal(v1::TuningJob::State state);

 private:
  absl::Status SaveLocked(v1::TuningJob& job);
  absl::StatusOr<int64_t> Emit(const std::string& job_id, v1::TuningJobEvent event);
  absl::StatusOr<int64_t> EmitState(const v1::TuningJob& job, const std::string& message);
  void Recover();
  // Sets provp_tuning_jobs{state} from the store.
  void RefreshGauges();
  void RunnerLoop();
  void RunJob(const std::string& id);
  std::string JobDir(const std::string& id) const;

  ServerEnv* env_;
  std::mutex job_mu_;  // serialises job record updates
  std::mutex mu_;      // runner wake-up and event notification
  std::condition_variable runner_cv_;
  std::condition_variable events_cv_;
  int64_t event_seq_ = 0;
  std::atomic<bool> stopping_{false};
  // The running job (empty when idle) and its stop flag.
  std::string running_id_;
  std::atomic<bool> stop_run_{false};
  bool cancel_requested_ = false;
  std::thread runner_;
};

}  // namespace provp::server
