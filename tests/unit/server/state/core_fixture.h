// A server core assembled for unit tests, with no gRPC anywhere: an
// in-memory store behind a failing store (fault injection), a fake clock, a
// fake engine whose training steps take no time, real metrics on a private
// registry and a logger writing to a temporary file the test can read.
// Restart() builds a fresh core over the same store and data folder, as a
// restarted process would find them. Test code only.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/image/image_io.h"
#include "core/metrics/families.h"
#include "core/store/file_store.h"
#include "gtest/gtest.h"
#include "server/state/dataset_registry.h"
#include "server/state/file_refs.h"
#include "server/state/job_runner.h"
#include "server/state/logging.h"
#include "server/state/prompt_set_registry.h"
#include "server/state/server_metrics.h"
#include "tests/testing/failing_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/in_memory_store.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {

class CoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/provp_core_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = std::tmpfile();
    ASSERT_NE(log_, nullptr);
    logger_ = std::make_unique<Logger>(LogFormat::kText, LogLevel::kDebug, log_);
    auto metrics = ServerMetrics::Create(&registry_);
    ASSERT_OK(metrics);
    metrics_ = std::move(*metrics);
    engine_options_.step_milliseconds = 0;
    engine_options_.steps_per_epoch = 2;
    engine_options_.default_epochs = 2;
    engine_options_.before_step = [this](int64_t step) {
      if (before_step_) before_step_(step);
    };
    Restart();
  }

  void TearDown() override {
    runner_.reset();
    prompt_sets_.reset();
    datasets_.reset();
    engine_.reset();
    file_refs_.reset();
    files_.reset();
    std::fclose(log_);
    std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "could not remove " << dir_;
  }

  // A new process over the same store and files: the old core is gone
  // without any shutdown work (as after a crash).
  void Restart() {
    runner_.reset();
    prompt_sets_.reset();
    datasets_.reset();
    file_refs_.reset();
    files_.reset();
    store::SharedDirOptions file_options;
    file_options.root = dir_ + "/blobs";
    file_options.env = env_;
    auto files = store::OpenSharedDirFileStore(file_options);
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = std::move(*files);
    file_refs_ =
        std::make_unique<FileRefs>(&store_, files_.get(), logger_.get(), FileRefsOptions{});
    engine_ = std::make_unique<engine::FakeEngine>(engine_options_);
    datasets_ = std::make_unique<DatasetRegistry>(&store_, file_refs_.get(), &clock_, logger_.get(),
                                                  DatasetRegistryOptions{dir_, {}, limits_});
    prompt_sets_ = std::make_unique<PromptSetRegistry>(
        &store_, file_refs_.get(), engine_.get(), &clock_, metrics_.get(), logger_.get(),
        PromptSetRegistryOptions{dir_, limits_, {}, env_});
    JobRunnerOptions o;
    o.data_dir = dir_;
    o.limits = limits_;
    runner_ =
        std::make_unique<JobRunner>(&store_, file_refs_.get(), engine_.get(), datasets_.get(),
                                    prompt_sets_.get(), &clock_, metrics_.get(), logger_.get(), o);
  }

  // The stored file a content key names.
  std::string BlobPath(const std::string& key) const {
    return dir_ + "/blobs/sha256/" + key.substr(7, 2) + "/" + key.substr(7);
  }

  // Everything logged so far.
  std::string Logs() {
    std::fflush(log_);
    std::string out;
    std::rewind(log_);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, log_)) > 0;) out.append(buf, n);
    std::fseek(log_, 0, SEEK_END);
    return out;
  }

  static std::string SolidPng(uint8_t r, uint8_t g, uint8_t b) {
    image::RgbImage img;
    img.height = img.width = 8;
    for (int i = 0; i < 64; ++i) img.pixels.insert(img.pixels.end(), {r, g, b});
    auto png = image::EncodePng(img);
    EXPECT_TRUE(png.ok());
    return png.ok() ? *png : std::string();
  }

  // Uploads "red/green/blue" with 3 train and 1 test image per class; blue
  // is novel.
  void MakeDataset(const std::string& id) {
    std::vector<v1::UploadDatasetRequest> msgs(2);
    v1::DatasetMetadata* meta = msgs[0].mutable_metadata();
    meta->set_dataset_id(id);
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
    auto ds = datasets_->Upload([&](v1::UploadDatasetRequest* m) {
      if (next >= msgs.size()) return false;
      *m = msgs[next++];
      return true;
    });
    ASSERT_OK(ds);
  }

  v1::CreateTuningJobRequest JobRequest(const std::string& job_id,
                                        const std::string& dataset = "datasets/colours") {
    v1::CreateTuningJobRequest req;
    req.set_tuning_job_id(job_id);
    req.mutable_tuning_job()->set_dataset(dataset);
    req.mutable_tuning_job()->mutable_hyperparameters()->set_shots(2);
    // Create resolves every value (the preset's would be 100 epochs), so the
    // fake engine's short run is asked for explicitly.
    req.mutable_tuning_job()->mutable_hyperparameters()->set_epochs(engine_options_.default_epochs);
    return req;
  }

  std::vector<v1::TuningJobEvent> Events(const std::string& job_id) {
    auto events = runner_->ListEvents(job_id, 0, 0);
    EXPECT_OK(events);
    return events.ok() ? *events : std::vector<v1::TuningJobEvent>();
  }

  std::string dir_;
  std::FILE* log_ = nullptr;
  testing::InMemoryStore memory_;
  testing::FailingStore store_{&memory_};
  testing::FakeClock clock_;
  metrics::MetricFamilies registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  // The file writes of the file store and of import staging (a test sets
  // a fault-injecting Env before Restart()).
  util::Env* env_ = util::Env::Default();
  std::unique_ptr<Logger> logger_;
  Limits limits_;
  engine::FakeEngineOptions engine_options_;
  // Runs before each training step of the fake engine (set by a test).
  std::function<void(int64_t)> before_step_;
  std::unique_ptr<engine::FakeEngine> engine_;
  std::unique_ptr<store::FileStore> files_;
  std::unique_ptr<FileRefs> file_refs_;
  std::unique_ptr<DatasetRegistry> datasets_;
  std::unique_ptr<PromptSetRegistry> prompt_sets_;
  std::unique_ptr<JobRunner> runner_;
};

}  // namespace provp::server
