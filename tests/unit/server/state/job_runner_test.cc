// The tuning-job state machine driven step by step on the test's thread
// (JobRunner::RunNextQueued, no runner thread, no gRPC, no sleeps): the
// happy path, queue order and limits, cancellation queued and running,
// graceful stop, crash recovery, and store failures at the points where a
// job could be left wrong - each must be logged and end in a state the
// next start repairs.
#include "server/state/job_runner.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/state/errors.h"
#include "server/state/tables.h"
#include "tests/unit/server/state/core_fixture.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;
using ::provp::testing::StoreOp;
using ::testing::HasSubstr;

class JobRunnerTest : public CoreFixture {
 protected:
  void SetUp() override {
    CoreFixture::SetUp();
    MakeDataset("colours");
  }

  std::vector<v1::TuningJob::State> StateChanges(const std::string& job_id) {
    std::vector<v1::TuningJob::State> states;
    for (const auto& ev : Events(job_id)) {
      if (ev.type() == v1::TuningJobEvent::STATE_CHANGED) states.push_back(ev.state());
    }
    return states;
  }

  v1::TuningJob MustGet(const std::string& id) {
    auto job = runner_->Get(id);
    EXPECT_OK(job);
    return job.ok() ? *job : v1::TuningJob();
  }
};

TEST_F(JobRunnerTest, QueuedJobRunsToSucceededAndPublishesItsPromptSet) {
  auto created = runner_->Create(JobRequest("j1"));
  ASSERT_OK(created);
  EXPECT_EQ(created->state(), v1::TuningJob::QUEUED);
  EXPECT_EQ(created->name(), "tuningJobs/j1");
  EXPECT_EQ(created->output_prompt_set_id(), "j1");

  EXPECT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  EXPECT_EQ(job.state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(job.result().prompt_set(), "promptSets/j1");
  EXPECT_EQ(job.progress().epoch(), 2);
  EXPECT_DOUBLE_EQ(job.progress().fraction(), 1.0);
  EXPECT_TRUE(job.has_end_time());
  EXPECT_THAT(StateChanges("j1"),
              ::testing::ElementsAre(v1::TuningJob::QUEUED, v1::TuningJob::RUNNING,
                                     v1::TuningJob::SUCCEEDED));
  int checkpoints = 0;
  for (const auto& ev : Events("j1")) checkpoints += ev.type() == v1::TuningJobEvent::CHECKPOINT;
  EXPECT_EQ(checkpoints, 2);
  // Published and loaded (auto_load_prompt_sets).
  auto ps = prompt_sets_->Get("j1");
  ASSERT_OK(ps);
  EXPECT_EQ(ps->state(), v1::PromptSet::ACTIVE);
  EXPECT_EQ(ps->source_tuning_job(), "tuningJobs/j1");
  EXPECT_OK(prompt_sets_->GetLoaded("j1"));
  // Nothing left to run.
  EXPECT_FALSE(runner_->RunNextQueued());
}

TEST_F(JobRunnerTest, TimesComeFromTheClock) {
  const absl::Time t0 = clock_.Now();
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  EXPECT_EQ(job.create_time().seconds(), absl::ToUnixSeconds(t0));
  EXPECT_EQ(job.start_time().seconds(), absl::ToUnixSeconds(t0 + absl::Minutes(5)));
}

TEST_F(JobRunnerTest, SameRequestIdReturnsTheFirstJob) {
  auto req = JobRequest("j1");
  req.set_request_id("req-1");
  ASSERT_OK(runner_->Create(req));
  req.set_tuning_job_id("j2");
  auto again = runner_->Create(req);
  ASSERT_OK(again);
  EXPECT_EQ(again->name(), "tuningJobs/j1");
  EXPECT_THAT(runner_->Get("j2"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(JobRunnerTest, CreateRejectsTakenIdsAndUnknownDatasets) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  auto taken = runner_->Create(JobRequest("j1"));
  EXPECT_THAT(taken, StatusIs(absl::StatusCode::kAlreadyExists));
  // The output prompt-set id is taken too once j1 has published.
  ASSERT_TRUE(runner_->RunNextQueued());
  auto req = JobRequest("j2");
  req.set_output_prompt_set_id("j1");
  EXPECT_THAT(runner_->Create(req),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("set output_prompt_set_id")));
  auto missing = runner_->Create(JobRequest("j3", "datasets/nope"));
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(ReasonOf(missing.status()), "NOT_FOUND");
}

TEST_F(JobRunnerTest, QueueRunsOldestFirstAndIsBounded) {
  limits_.max_queued_jobs = 2;
  Restart();
  ASSERT_OK(runner_->Create(JobRequest("b-second")));
  clock_.Advance(absl::Seconds(1));
  ASSERT_OK(runner_->Create(JobRequest("a-third")));
  clock_.Advance(absl::Seconds(1));
  auto full = runner_->Create(JobRequest("c"));
  EXPECT_THAT(full, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ReasonOf(full.status()), "JOB_QUEUE_FULL");
  // Oldest first, not by id.
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("b-second").state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(MustGet("a-third").state(), v1::TuningJob::QUEUED);
  // A slot is free again.
  EXPECT_OK(runner_->Create(JobRequest("c")));
}

TEST_F(JobRunnerTest, CancelWhileQueuedNeverRuns) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  auto cancelled = runner_->Cancel("j1");
  ASSERT_OK(cancelled);
  EXPECT_EQ(cancelled->state(), v1::TuningJob::CANCELLED);
  EXPECT_EQ(cancelled->error().code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_FALSE(runner_->RunNextQueued());
  auto again = runner_->Cancel("j1");
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReasonOf(again.status()), "JOB_TERMINAL");
  EXPECT_THAT(runner_->Cancel("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(JobRunnerTest, CancelWhileRunningStopsAtTheNextStep) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  before_step_ = [&](int64_t step) {
    if (step != 2) return;
    auto cancelling = runner_->Cancel("j1");
    ASSERT_OK(cancelling);
    EXPECT_EQ(cancelling->state(), v1::TuningJob::CANCELLING);
  };
  ASSERT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  EXPECT_EQ(job.state(), v1::TuningJob::CANCELLED);
  EXPECT_EQ(job.error().code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_THAT(StateChanges("j1"),
              ::testing::ElementsAre(v1::TuningJob::QUEUED, v1::TuningJob::RUNNING,
                                     v1::TuningJob::CANCELLING, v1::TuningJob::CANCELLED));
  EXPECT_THAT(prompt_sets_->Get("j1"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(JobRunnerTest, GracefulStopRequeuesTheRunningJob) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  before_step_ = [&](int64_t step) {
    if (step == 3) runner_->Stop();
  };
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::QUEUED);
  EXPECT_EQ(Events("j1").back().level(), v1::TuningJobEvent::WARNING);
  // The next start resumes after the epoch whose checkpoint was written.
  before_step_ = nullptr;
  Restart();
  runner_->Recover();
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::SUCCEEDED);
  bool resumed = false;
  for (const auto& ev : Events("j1")) {
    resumed |= ev.message().find("resumed from checkpoint after epoch 1") != std::string::npos;
  }
  EXPECT_TRUE(resumed);
}

TEST_F(JobRunnerTest, FailedTrainingIsFailedWithItsReason) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  // The dataset's files vanish before the job runs.
  std::filesystem::remove_all(dir_ + "/blobs/sha256");
  ASSERT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  EXPECT_EQ(job.state(), v1::TuningJob::FAILED);
  EXPECT_EQ(job.error().code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(Events("j1").back().level(), v1::TuningJobEvent::ERROR);
}

TEST_F(JobRunnerTest, AnExceptionFromTheEngineFailsOnlyThatJob) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  ASSERT_OK(runner_->Create(JobRequest("j2")));
  bool thrown = false;
  before_step_ = [&](int64_t) {
    if (thrown) return;
    thrown = true;
    throw std::runtime_error("engine bug");
  };
  ASSERT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  EXPECT_EQ(job.state(), v1::TuningJob::FAILED);
  EXPECT_EQ(job.error().code(), static_cast<int>(absl::StatusCode::kInternal));
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j2").state(), v1::TuningJob::SUCCEEDED);
}

// The W3C trace context of the creating call is stored on the job and
// copied onto every event, through the run and a restart, so
// ListTuningJobEvents (and `provp jobs events`) shows which trace asked for
// the work. A job created without one has none; what a client writes into
// the output-only field is ignored.
TEST_F(JobRunnerTest, TraceparentOfTheCreateCallReachesTheJobAndEveryEvent) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto traced = JobRequest("traced");
  traced.mutable_tuning_job()->set_traceparent(
      "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01");
  auto created = runner_->Create(traced, tp);
  ASSERT_OK(created);
  EXPECT_EQ(created->traceparent(), tp);
  ASSERT_TRUE(runner_->RunNextQueued());
  // A crash while it runs: recovery's events carry it too.
  auto jobs = JobTable(&store_);
  v1::TuningJob job = MustGet("traced");
  ASSERT_EQ(job.state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(job.traceparent(), tp);
  job.set_state(v1::TuningJob::RUNNING);
  ASSERT_OK(jobs.Update("traced", job, "RUNNING"));
  Restart();
  runner_->Recover();
  ASSERT_TRUE(runner_->RunNextQueued());

  const std::vector<v1::TuningJobEvent> events = Events("traced");
  std::set<v1::TuningJobEvent::Type> types;
  for (const auto& ev : events) {
    types.insert(ev.type());
    EXPECT_EQ(ev.traceparent(), tp)
        << v1::TuningJobEvent::Type_Name(ev.type()) << " " << ev.message();
    if (ev.has_tuning_job()) EXPECT_EQ(ev.tuning_job().traceparent(), tp);
  }
  EXPECT_THAT(types, ::testing::IsSupersetOf({v1::TuningJobEvent::STATE_CHANGED,
                                              v1::TuningJobEvent::CHECKPOINT,
                                              v1::TuningJobEvent::SERVER_RESTARTED}));
  EXPECT_THAT(Logs(), HasSubstr("traceparent=" + tp)) << "job event log lines name it";

  auto plain = JobRequest("plain");
  plain.mutable_tuning_job()->set_traceparent(tp);
  ASSERT_OK(runner_->Create(plain));
  EXPECT_EQ(MustGet("plain").traceparent(), "") << "output only";
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("plain").state(), v1::TuningJob::SUCCEEDED);
  for (const auto& ev : Events("plain")) EXPECT_EQ(ev.traceparent(), "");
}

TEST_F(JobRunnerTest, RecoveryRequeuesRunningAndFinishesCancellingJobs) {
  ASSERT_OK(runner_->Create(JobRequest("running")));
  ASSERT_OK(runner_->Create(JobRequest("cancelling")));
  // A crash after epoch 1 of "running" and while "cancelling" was being
  // cancelled leaves these records and the checkpoint behind.
  auto jobs = JobTable(&store_);
  v1::TuningJob running = MustGet("running");
  running.set_state(v1::TuningJob::RUNNING);
  running.mutable_progress()->set_epoch(1);
  ASSERT_OK(jobs.Update("running", running, "RUNNING"));
  std::filesystem::create_directories(dir_ + "/jobs/running");
  std::ofstream(dir_ + "/jobs/running/checkpoint.safetensors") << R"({"epochs_completed":1})";
  v1::TuningJob cancelling = MustGet("cancelling");
  cancelling.set_state(v1::TuningJob::CANCELLING);
  ASSERT_OK(jobs.Update("cancelling", cancelling, "CANCELLING"));

  Restart();
  runner_->Recover();
  v1::TuningJob requeued = MustGet("running");
  EXPECT_EQ(requeued.state(), v1::TuningJob::QUEUED);
  EXPECT_EQ(requeued.restart_count(), 1);
  const v1::TuningJobEvent last = Events("running").back();
  EXPECT_EQ(last.type(), v1::TuningJobEvent::SERVER_RESTARTED);
  EXPECT_THAT(last.message(), HasSubstr("after epoch 1"));
  EXPECT_EQ(MustGet("cancelling").state(), v1::TuningJob::CANCELLED);

  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("running").state(), v1::TuningJob::SUCCEEDED);
  EXPECT_FALSE(runner_->RunNextQueued());
}

TEST_F(JobRunnerTest, DeleteRemovesAnEndedJobAndItsEventsOnly) {
  ASSERT_OK(runner_->Create(JobRequest("ended")));
  ASSERT_TRUE(runner_->RunNextQueued());
  ASSERT_OK(runner_->Create(JobRequest("waiting")));
  EXPECT_THAT(runner_->Delete("waiting"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cancel it")));
  EXPECT_EQ(ReasonOf(runner_->Delete("waiting")), "JOB_NOT_ENDED");
  EXPECT_THAT(runner_->Delete("nobody"), StatusIs(absl::StatusCode::kNotFound));
  std::filesystem::create_directories(dir_ + "/jobs/ended");
  ASSERT_FALSE(Events("ended").empty());
  ASSERT_OK(runner_->Delete("ended"));
  EXPECT_THAT(runner_->Get("ended"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/jobs/ended"));
  auto events = runner_->ListEvents("ended", 0, 100);
  EXPECT_FALSE(events.ok() && !events->empty());
  // The prompt set it produced stays; the id can be used again.
  EXPECT_OK(prompt_sets_->Get("ended"));
  EXPECT_OK(runner_->Get("waiting"));
  EXPECT_THAT(runner_->Delete("ended"), StatusIs(absl::StatusCode::kNotFound));
}

// A crash after a job's end was stored and before its working folder was
// removed (found by the random-SIGKILL e2e test) leaves the local
// checkpoint and result file; the next start removes them, and those of
// jobs that no longer exist, but keeps the folders of unfinished jobs.
TEST_F(JobRunnerTest, RecoveryRemovesTheWorkingFoldersOfEndedJobs) {
  ASSERT_OK(runner_->Create(JobRequest("ended")));
  ASSERT_TRUE(runner_->RunNextQueued());
  ASSERT_EQ(MustGet("ended").state(), v1::TuningJob::SUCCEEDED);
  ASSERT_OK(runner_->Create(JobRequest("waiting")));
  for (const char* id : {"ended", "waiting", "unknown"}) {
    std::filesystem::create_directories(dir_ + "/jobs/" + id);
    std::ofstream(dir_ + "/jobs/" + id + "/checkpoint.safetensors") << "{}";
    std::ofstream(dir_ + "/jobs/" + id + "/result.pset") << "x";
  }
  Restart();
  runner_->Recover();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/jobs/ended"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/jobs/unknown"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/jobs/waiting/checkpoint.safetensors"));
  EXPECT_THAT(Logs(), HasSubstr("removing the working folder a crash left behind"));
}

// The finished job whose final save fails must not stay RUNNING silently:
// the failure is logged with the job and the state it should have, and the
// job is taken over again once the store works (its lease is released), to
// end SUCCEEDED with the prompt set it already published.
TEST_F(JobRunnerTest, FinalStateNotStoredIsLoggedAndRepaired) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  // From the last step on, no plain record write succeeds (the final save
  // is one; compare-and-set updates still pass).
  before_step_ = [&](int64_t step) {
    if (step == 4) store_.FailEveryCall(StoreOp::kPut);
  };
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::RUNNING);
  const std::string logs = Logs();
  EXPECT_THAT(logs, HasSubstr("job finished but its final state was not stored"));
  EXPECT_THAT(logs, HasSubstr("job_id=j1"));
  EXPECT_THAT(logs, HasSubstr("state=SUCCEEDED"));
  store_.Heal();
  before_step_ = nullptr;
  ASSERT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  EXPECT_EQ(job.state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(job.restart_count(), 1);
  EXPECT_EQ(job.result().prompt_set(), "promptSets/j1");
  EXPECT_FALSE(runner_->RunNextQueued());
}

// The same after a crash: the next start's recovery requeues it.
TEST_F(JobRunnerTest, FinalStateNotStoredIsRepairedAtTheNextStart) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  before_step_ = [&](int64_t step) {
    if (step == 4) store_.FailEveryCall(StoreOp::kPut);
  };
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::RUNNING);
  store_.Heal();
  before_step_ = nullptr;
  Restart();
  runner_->Recover();
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::QUEUED);
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::SUCCEEDED);
}

TEST_F(JobRunnerTest, StoreFailureWhenStartingLeavesTheJobQueued) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  store_.FailNthCall(StoreOp::kUpdate, 1);
  EXPECT_FALSE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::QUEUED);
  EXPECT_THAT(Logs(), HasSubstr("cannot mark a job RUNNING"));
  EXPECT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::SUCCEEDED);
}

TEST_F(JobRunnerTest, LostEventsAreLoggedAndTheJobGoesOn) {
  store_.FailEveryCall(StoreOp::kAppendEvent);
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  ASSERT_TRUE(runner_->RunNextQueued());
  store_.Heal();
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::SUCCEEDED);
  EXPECT_TRUE(Events("j1").empty());
  EXPECT_THAT(Logs(), HasSubstr("job event not stored"));
}

TEST_F(JobRunnerTest, RecoveryThatCannotReadTheStoreIsLoggedAndChangesNothing) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  auto jobs = JobTable(&store_);
  v1::TuningJob job = MustGet("j1");
  job.set_state(v1::TuningJob::RUNNING);
  ASSERT_OK(jobs.Update("j1", job, "RUNNING"));
  Restart();
  store_.FailNthCall(StoreOp::kClaim, 1);
  runner_->Recover();
  EXPECT_THAT(Logs(), HasSubstr("job recovery failed"));
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::RUNNING);
  runner_->Recover();
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::QUEUED);
}

TEST_F(JobRunnerTest, ListFiltersByStateNewestFirst) {
  ASSERT_OK(runner_->Create(JobRequest("old")));
  clock_.Advance(absl::Seconds(1));
  ASSERT_OK(runner_->Create(JobRequest("new")));
  ASSERT_OK(runner_->Cancel("old"));
  auto all = runner_->List(0, "", "");
  ASSERT_OK(all);
  ASSERT_EQ(all->items.size(), 2u);
  EXPECT_EQ(all->items[0].name(), "tuningJobs/new");
  auto queued = runner_->List(0, "", "state=QUEUED");
  ASSERT_OK(queued);
  ASSERT_EQ(queued->items.size(), 1u);
  EXPECT_EQ(queued->items[0].name(), "tuningJobs/new");
  auto bad = runner_->List(0, "", "owner=me");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ReasonOf(bad.status()), "INVALID_FILTER");
}

TEST_F(JobRunnerTest, AnEventThatDoesNotParseIsDataLoss) {
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  ASSERT_OK(memory_.AppendEvent("j1", [](int64_t) { return std::string("\xff\xff garbage"); }));
  auto events = runner_->ListEvents("j1", 0, 0);
  EXPECT_THAT(events, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(ReasonOf(events.status()), "CORRUPT_RECORD");
}

}  // namespace
}  // namespace provp::server
