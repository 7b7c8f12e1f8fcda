// Fuzzes a CreateTuningJob request from its bytes through the server's own
// path: ParseRequest (as every RPC's bytes), then JobRunner::Create with its
// checks (ids, names, the dataset "colours" and its shots, hyperparameters,
// an output prompt set that exists - "p1" - limits) on the real SQLite
// store. The runner is never started, so a created job stays QUEUED; it is
// deleted again so the store stays small. Invariants: parse refusals are
// MALFORMED_MESSAGE and never the safety net; Create refuses only with a
// client-side code; a created job is QUEUED under tuningJobs/ with the
// requested dataset.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "fuzz/server_core.h"
#include "provp/v1/tuning.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using provp::fuzz::Require;
  provp::fuzz::ServerCore& core = provp::fuzz::Core();
  provp::v1::CreateTuningJobRequest req;
  absl::Status parsed =
      provp::server::ParseRequest(std::string(reinterpret_cast<const char*>(data), size), &req);
  if (!parsed.ok()) {
    provp::fuzz::RequireMalformed(parsed);
    return 0;
  }
  absl::StatusOr<provp::v1::TuningJob> job = core.jobs->Create(req);
  if (!job.ok()) {
    const absl::StatusCode c = job.status().code();
    Require(c == absl::StatusCode::kInvalidArgument || c == absl::StatusCode::kNotFound ||
                c == absl::StatusCode::kAlreadyExists ||
                c == absl::StatusCode::kResourceExhausted ||
                c == absl::StatusCode::kUnimplemented || c == absl::StatusCode::kFailedPrecondition,
            "Create refuses with a client-side code", job.status());
    return 0;
  }
  Require(job->state() == provp::v1::TuningJob::QUEUED, "a created job is QUEUED");
  Require(absl::StartsWith(job->name(), "tuningJobs/"), "a job is named tuningJobs/...");
  Require(job->dataset() == req.tuning_job().dataset(), "the job keeps its dataset");
  const std::string id = job->name().substr(std::string("tuningJobs/").size());
  absl::Status deleted = core.store->Delete(provp::store::Kind::kJob, id);
  Require(deleted.ok(), "delete the created job", deleted);
  return 0;
}
