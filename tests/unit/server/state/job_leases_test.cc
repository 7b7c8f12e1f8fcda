// Job leases between replicas, on the real SQLite store (which implements
// Claim/RenewLease/Update like PostgreSQL): two server cores ("replicas")
// share one store, one data folder and a fake clock. A job whose runner
// died is left alone while its lease lives (start-up recovery included)
// and resumed by the other replica once it expired, with restart_count
// raised and its events intact; a cancel made on one replica stops the job
// running on the other.
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/image/image_io.h"
#include "core/metrics/families.h"
#include "core/store/file_store.h"
#include "core/store/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/state/dataset_registry.h"
#include "server/state/file_refs.h"
#include "server/state/job_runner.h"
#include "server/state/logging.h"
#include "server/state/prompt_set_registry.h"
#include "server/state/server_metrics.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

std::string SolidPng(uint8_t r, uint8_t g, uint8_t b) {
  image::RgbImage img;
  img.height = img.width = 8;
  for (int i = 0; i < 64; ++i) img.pixels.insert(img.pixels.end(), {r, g, b});
  auto png = image::EncodePng(img);
  EXPECT_TRUE(png.ok());
  return png.ok() ? *png : std::string();
}

// One replica's server core over the shared store.
struct Replica {
  // Its own data folder (scratch); only the store and the file store are
  // shared.
  std::string data_dir;
  std::unique_ptr<store::FileStore> files;
  std::unique_ptr<FileRefs> file_refs;
  std::unique_ptr<engine::FakeEngine> engine;
  metrics::MetricFamilies registry;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<DatasetRegistry> datasets;
  std::unique_ptr<PromptSetRegistry> prompt_sets;
  std::unique_ptr<JobRunner> runner;
};

class JobLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/provp_leases_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = store::OpenSqliteStore(dir_ + "/state.db");
    ASSERT_OK(store);
    store_ = std::move(*store);
    log_ = std::tmpfile();
    logger_ = std::make_unique<Logger>(LogFormat::kText, LogLevel::kDebug, log_);
  }
  void TearDown() override {
    replicas_.clear();
    store_.reset();
    std::fclose(log_);
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)!std::system(cmd.c_str());
  }

  Replica& Start(const std::string& owner, engine::FakeEngineOptions eo) {
    auto r = std::make_unique<Replica>();
    r->data_dir = dir_ + "/" + owner;
    std::filesystem::create_directories(r->data_dir);
    auto files = store::OpenSharedDirFileStore(SharedFiles());
    EXPECT_OK(files);
    r->files = std::move(*files);
    FileRefsOptions fro;
    fro.grace = absl::Hours(1);
    r->file_refs = std::make_unique<FileRefs>(store_.get(), r->files.get(), logger_.get(), fro);
    r->engine = std::make_unique<engine::FakeEngine>(eo);
    auto m = ServerMetrics::Create(&r->registry);
    EXPECT_OK(m);
    r->metrics = std::move(*m);
    r->datasets =
        std::make_unique<DatasetRegistry>(store_.get(), r->file_refs.get(), &clock_, logger_.get(),
                                          DatasetRegistryOptions{r->data_dir, {}, limits_});
    r->prompt_sets = std::make_unique<PromptSetRegistry>(
        store_.get(), r->file_refs.get(), r->engine.get(), &clock_, r->metrics.get(), logger_.get(),
        PromptSetRegistryOptions{r->data_dir, limits_, absl::Seconds(2)});
    JobRunnerOptions o;
    o.data_dir = r->data_dir;
    o.limits = limits_;
    o.shared_store = true;
    o.owner = owner;
    o.lease = absl::Seconds(15);
    o.cancel_poll = absl::Milliseconds(20);
    r->runner = std::make_unique<JobRunner>(store_.get(), r->file_refs.get(), r->engine.get(),
                                            r->datasets.get(), r->prompt_sets.get(), &clock_,
                                            r->metrics.get(), logger_.get(), o);
    replicas_.push_back(std::move(r));
    return *replicas_.back();
  }

  void MakeDataset(Replica& r) {
    std::vector<v1::UploadDatasetRequest> msgs(2);
    v1::DatasetMetadata* meta = msgs[0].mutable_metadata();
    meta->set_dataset_id("colours");
    for (const char* n : {"red", "green", "blue"}) meta->add_class_names(n);
    meta->add_novel_class_names("blue");
    const uint8_t colours[3][3] = {{220, 20, 20}, {20, 220, 20}, {20, 20, 220}};
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 4; ++i) {
        v1::LabeledImage* img = msgs[1].mutable_images()->add_images();
        img->set_encoded(SolidPng(colours[c][0], colours[c][1], colours[c][2]));
        img->set_label(c);
        img->set_split(i == 3 ? v1::TEST : v1::TRAIN);
      }
    }
    size_t next = 0;
    ASSERT_OK(r.datasets->Upload([&](v1::UploadDatasetRequest* m) {
      if (next >= msgs.size()) return false;
      *m = msgs[next++];
      return true;
    }));
  }

  // Create resolves every hyperparameter (the preset's epochs would be
  // 100), so each job asks for the epochs its fake engine was set up with.
  v1::CreateTuningJobRequest JobRequest(const std::string& id, int epochs) {
    v1::CreateTuningJobRequest req;
    req.set_tuning_job_id(id);
    req.mutable_tuning_job()->set_dataset("datasets/colours");
    req.mutable_tuning_job()->mutable_hyperparameters()->set_shots(2);
    req.mutable_tuning_job()->mutable_hyperparameters()->set_epochs(epochs);
    return req;
  }

  // What a replica that claimed `id`, marked it RUNNING and then died
  // leaves behind: a RUNNING record under its (now unrenewed) lease.
  void ClaimAndDie(const std::string& id, const std::string& dead_owner) {
    const int64_t now = absl::ToUnixMicros(clock_.Now());
    auto claimed = store_->Claim(
        store::Kind::kJob, store::ClaimOptions{{"QUEUED"}, dead_owner, now, now + 15'000'000});
    ASSERT_OK(claimed);
    ASSERT_TRUE(claimed->has_value());
    v1::TuningJob job;
    ASSERT_TRUE(job.ParseFromString((*claimed)->data));
    job.set_state(v1::TuningJob::RUNNING);
    store::Record r = **claimed;
    r.state = "RUNNING";
    r.data = job.SerializeAsString();
    ASSERT_OK(store_->Update(store::Kind::kJob, r, r.version));
  }

  // The folder every replica's file store opens (a ReadWriteMany volume).
  std::string SharedFiles() const { return dir_ + "/shared-files"; }

  std::string dir_;
  std::FILE* log_ = nullptr;
  std::unique_ptr<store::Store> store_;
  testing::FakeClock clock_;
  std::unique_ptr<Logger> logger_;
  Limits limits_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

engine::FakeEngineOptions QuickEngine() {
  engine::FakeEngineOptions eo;
  eo.step_milliseconds = 0;
  eo.steps_per_epoch = 2;
  eo.default_epochs = 2;
  return eo;
}

TEST_F(JobLeasesTest, ALiveLeaseIsLeftAloneAndAnExpiredOneIsResumedElsewhere) {
  Replica& a = Start("replica-a", QuickEngine());
  MakeDataset(a);
  ASSERT_OK(a.runner->Create(JobRequest("j1", 2)));
  ClaimAndDie("j1", "replica-dead");

  // Another replica starting now must not steal a live replica's job.
  Replica& b = Start("replica-b", QuickEngine());
  b.runner->Recover();
  EXPECT_FALSE(b.runner->RunNextQueued());
  auto job = b.runner->Get("j1");
  ASSERT_OK(job);
  EXPECT_EQ(job->state(), v1::TuningJob::RUNNING);
  EXPECT_EQ(job->restart_count(), 0);

  // The dead replica never renews: after the lease, b takes over.
  clock_.Advance(absl::Seconds(16));
  EXPECT_TRUE(b.runner->RunNextQueued());
  job = a.runner->Get("j1");
  ASSERT_OK(job);
  EXPECT_EQ(job->state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(job->restart_count(), 1);
  auto events = a.runner->ListEvents("j1", 0, 0);
  ASSERT_OK(events);
  bool restarted = false;
  for (size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].id(), static_cast<int64_t>(i + 1)) << "event ids stay contiguous";
    if ((*events)[i].type() == v1::TuningJobEvent::SERVER_RESTARTED) {
      restarted = true;
      EXPECT_THAT((*events)[i].message(), HasSubstr("stopped renewing its lease"));
    }
  }
  EXPECT_TRUE(restarted);
  // The lease is released at the end; the prompt set is usable on a too.
  auto record = store_->Get(store::Kind::kJob, "j1");
  ASSERT_OK(record);
  EXPECT_EQ(record->lease_owner, "");
  EXPECT_OK(a.prompt_sets->GetLoaded("j1"));
}

TEST_F(JobLeasesTest, ACancelOnOneReplicaStopsTheJobRunningOnAnother) {
  engine::FakeEngineOptions slow = QuickEngine();
  slow.step_milliseconds = 5;
  slow.default_epochs = 1000;
  Replica& runner = Start("replica-runner", slow);
  Replica& front = Start("replica-front", QuickEngine());
  MakeDataset(front);
  ASSERT_OK(front.runner->Create(JobRequest("long", 1000)));
  std::thread t([&] { EXPECT_TRUE(runner.runner->RunNextQueued()); });
  for (int i = 0; i < 500; ++i) {
    auto j = front.runner->Get("long");
    if (j.ok() && j->state() == v1::TuningJob::RUNNING) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto cancelling = front.runner->Cancel("long");
  ASSERT_OK(cancelling);
  EXPECT_EQ(cancelling->state(), v1::TuningJob::CANCELLING);
  t.join();  // returns only because the runner saw the cancel
  auto job = front.runner->Get("long");
  ASSERT_OK(job);
  EXPECT_EQ(job->state(), v1::TuningJob::CANCELLED);
  EXPECT_LT(job->progress().epoch(), 1000);
}

// Replicas share only the store and the file store: a checkpoint written by
// one is resumed from by another through the key in the job record, the
// prompt set it publishes is loaded elsewhere by its content key, and a
// damaged file is DATA_LOSS on the replica that reads it, not a crash.
TEST_F(JobLeasesTest, CheckpointsAndPromptSetsAreReadByContentKeyOnOtherReplicas) {
  engine::FakeEngineOptions eo = QuickEngine();
  eo.default_epochs = 4;
  Replica* writer = nullptr;
  eo.before_step = [&writer](int64_t step) {
    if (step == 5 && writer != nullptr) writer->runner->Stop();  // after epoch 2
  };
  Replica& a = Start("replica-a", eo);
  writer = &a;
  MakeDataset(a);
  ASSERT_OK(a.runner->Create(JobRequest("j1", 4)));
  ASSERT_TRUE(a.runner->RunNextQueued());
  auto job = a.runner->Get("j1");
  ASSERT_OK(job);
  ASSERT_EQ(job->state(), v1::TuningJob::QUEUED);
  const std::string checkpoint = job->checkpoint_key();
  ASSERT_TRUE(store::IsContentKey(checkpoint)) << checkpoint;
  writer = nullptr;

  // Another replica, with its own (empty) data folder, takes it over.
  engine::FakeEngineOptions four = QuickEngine();
  four.default_epochs = 4;
  Replica& c = Start("replica-c", four);
  ASSERT_FALSE(std::filesystem::exists(c.data_dir + "/jobs/j1/checkpoint.safetensors"));
  ASSERT_TRUE(c.runner->RunNextQueued());
  job = c.runner->Get("j1");
  ASSERT_OK(job);
  ASSERT_EQ(job->state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(job->checkpoint_key(), "");
  auto events = c.runner->ListEvents("j1", 0, 0);
  ASSERT_OK(events);
  int checkpoints = 0;
  bool resumed = false;
  for (const auto& ev : *events) {
    resumed |= ev.message().find("resumed from checkpoint after epoch 2") != std::string::npos;
    checkpoints += ev.type() == v1::TuningJobEvent::CHECKPOINT;
  }
  EXPECT_TRUE(resumed);
  EXPECT_EQ(checkpoints, 4) << "epochs 1-2 on a, 3-4 on c";

  // The set c published is loaded on a from the shared file store.
  auto ps = a.prompt_sets->Get("j1");
  ASSERT_OK(ps);
  ASSERT_TRUE(store::IsContentKey(ps->content_key()));
  EXPECT_OK(a.prompt_sets->GetLoaded("j1"));
  auto exported = a.prompt_sets->ReadFile("j1");
  ASSERT_OK(exported);
  EXPECT_EQ(store::ContentKey(*exported), ps->content_key());

  // Damage the shared file: a replica that has not loaded it yet answers
  // DATA_LOSS for a load and an export.
  auto path = a.files->LocalPath(ps->content_key());
  ASSERT_OK(path);
  std::ofstream(*path, std::ios::trunc) << R"({"fake_prompt_set":1,"tampered":true})";
  Replica& d = Start("replica-d", four);
  EXPECT_THAT(d.prompt_sets->GetLoaded("j1"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(d.prompt_sets->ReadFile("j1"), StatusIs(absl::StatusCode::kDataLoss));
  // The replica that had it loaded keeps serving what it loaded.
  EXPECT_OK(a.prompt_sets->GetLoaded("j1"));
}

}  // namespace
}  // namespace provp::server
