// Files in the file store as the server core uses them: when a file is
// removed (the last record referring to it goes, a checkpoint is replaced,
// a job ends; pins and the grace keep files about to be recorded), the
// sweep and its refusal to guess when a manifest cannot be read, resuming
// from a checkpoint by content key and starting over from a damaged one,
// and the start-up move of an older data folder's name-addressed files.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/store/file_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/state/dataset_manifest.h"
#include "server/state/errors.h"
#include "server/state/file_migration.h"
#include "server/state/file_refs.h"
#include "server/state/tables.h"
#include "tests/unit/server/state/core_fixture.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;
using ::provp::testing::StatusIs;
using ::testing::HasSubstr;

std::string FakePromptSetFile(const std::string& variant = "provp_ref") {
  return R"({"fake_prompt_set":1,"backbone":"fake-backbone-0001","variant":")" + variant +
         R"(","base_class_names":["red","green"],"novel_class_names":["blue"]})";
}

class FileRefsTest : public CoreFixture {
 protected:
  absl::StatusOr<v1::PromptSet> Import(const std::string& id, const std::string& file) {
    std::vector<v1::ImportPromptSetRequest> msgs(2);
    msgs[0].mutable_metadata()->set_prompt_set_id(id);
    msgs[0].mutable_metadata()->set_load(true);
    // Two chunks: the import streams them to its staging file.
    msgs[1].set_chunk(file.substr(0, file.size() / 2));
    msgs.emplace_back().set_chunk(file.substr(file.size() / 2));
    size_t next = 0;
    return prompt_sets_->Import([&](v1::ImportPromptSetRequest* m) {
      if (next >= msgs.size()) return false;
      *m = msgs[next++];
      return true;
    });
  }

  std::set<std::string> StoredKeys() {
    std::set<std::string> keys;
    auto listed = files_->List();
    EXPECT_OK(listed);
    if (listed.ok()) {
      for (const auto& f : *listed) keys.insert(f.key);
    }
    return keys;
  }

  v1::TuningJob MustGet(const std::string& id) {
    auto job = runner_->Get(id);
    EXPECT_OK(job);
    return job.ok() ? *job : v1::TuningJob();
  }

  void MakeOld(const std::string& path) {
    fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(2));
  }
};

TEST_F(FileRefsTest, AFileSharedByTwoRecordsStaysUntilTheLastGoes) {
  auto p1 = Import("p1", FakePromptSetFile());
  auto p2 = Import("p2", FakePromptSetFile());
  ASSERT_OK(p1);
  ASSERT_OK(p2);
  ASSERT_EQ(p1->content_key(), p2->content_key());
  EXPECT_EQ(p1->size_bytes(), static_cast<int64_t>(FakePromptSetFile().size()));
  ASSERT_OK(prompt_sets_->Delete("p1"));
  EXPECT_TRUE(fs::exists(BlobPath(p2->content_key())));
  auto exported = prompt_sets_->ReadFile("p2");
  ASSERT_OK(exported);
  EXPECT_EQ(*exported, FakePromptSetFile());
  ASSERT_OK(prompt_sets_->Delete("p2"));
  EXPECT_TRUE(StoredKeys().empty());
}

TEST_F(FileRefsTest, AFailedUploadTakesBackTheImagesItStored) {
  MakeDataset("colours");
  const std::set<std::string> before = StoredKeys();
  std::vector<v1::UploadDatasetRequest> msgs(2);
  msgs[0].mutable_metadata()->set_dataset_id("half");
  msgs[0].mutable_metadata()->add_class_names("grey");
  v1::LabeledImage* good = msgs[1].mutable_images()->add_images();
  good->set_encoded(SolidPng(90, 90, 91));
  // The red image is in "colours" too: it must stay.
  v1::LabeledImage* shared = msgs[1].mutable_images()->add_images();
  shared->set_encoded(SolidPng(220, 20, 20));
  v1::LabeledImage* bad = msgs[1].mutable_images()->add_images();
  bad->set_encoded(SolidPng(1, 2, 3));
  bad->set_label(7);
  size_t next = 0;
  auto refused = datasets_->Upload([&](v1::UploadDatasetRequest* m) {
    if (next >= msgs.size()) return false;
    *m = msgs[next++];
    return true;
  });
  EXPECT_EQ(ReasonOf(refused.status()), "LABEL_OUT_OF_RANGE");
  EXPECT_EQ(StoredKeys(), before);
  // And the dataset that shares an image still trains.
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::SUCCEEDED);
}

TEST_F(FileRefsTest, TheSweepRemovesOnlyWhatNoRecordOrPinHolds) {
  MakeDataset("colours");
  ASSERT_OK(Import("p1", FakePromptSetFile()));
  const std::set<std::string> in_use = StoredKeys();
  ASSERT_EQ(in_use.size(), 5u);  // 3 images, the manifest, the prompt set
  // What a crash leaves: stored, never recorded.
  auto orphan = files_->Put("stored, then the process died");
  ASSERT_OK(orphan);
  // Stored by a writer of this process that has not written its record.
  FileRefs::Pin pin = file_refs_->NewPin();
  auto pinned = file_refs_->Put(pin, "about to be recorded");
  ASSERT_OK(pinned);
  auto swept = file_refs_->Sweep();
  ASSERT_OK(swept);
  EXPECT_EQ(swept->removed, 1);
  EXPECT_EQ(swept->kept_recent, 1);
  std::set<std::string> expected = in_use;
  expected.insert(*pinned);
  EXPECT_EQ(StoredKeys(), expected);
  { FileRefs::Pin done = std::move(pin); }
  swept = file_refs_->Sweep();
  ASSERT_OK(swept);
  EXPECT_EQ(swept->removed, 1);
  EXPECT_EQ(StoredKeys(), in_use);
}

// Beside other replicas the grace stands in for their pins: a file stored
// (or stored again) within it stays.
TEST_F(FileRefsTest, WithAGraceOnlyOldUnusedFilesGo) {
  FileRefsOptions o;
  o.grace = absl::Hours(1);
  FileRefs shared(&store_, files_.get(), logger_.get(), o);
  auto a = files_->Put("unused a");
  auto b = files_->Put("unused b");
  ASSERT_OK(a);
  ASSERT_OK(b);
  auto swept = shared.Sweep();
  ASSERT_OK(swept);
  EXPECT_EQ(swept->removed, 0);
  EXPECT_EQ(swept->kept_recent, 2);
  MakeOld(BlobPath(*a));
  MakeOld(BlobPath(*b));
  ASSERT_OK(files_->Put("unused b"));  // another replica stores it again
  swept = shared.Sweep();
  ASSERT_OK(swept);
  EXPECT_EQ(swept->removed, 1);
  EXPECT_EQ(StoredKeys(), std::set<std::string>{*b});
}

// A manifest that cannot be read hides which images are in use: the sweep
// removes nothing rather than guess.
TEST_F(FileRefsTest, ADamagedManifestStopsTheSweep) {
  MakeDataset("colours");
  auto ds = datasets_->Get("colours");
  ASSERT_OK(ds);
  std::ofstream(BlobPath(ds->manifest_key())) << "{}";
  auto orphan = files_->Put("unused");
  ASSERT_OK(orphan);
  EXPECT_THAT(file_refs_->Sweep(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("datasets/colours")));
  EXPECT_EQ(StoredKeys().size(), 5u);
  EXPECT_THAT(datasets_->ReadManifest(*ds), StatusIs(absl::StatusCode::kDataLoss));
  // A job on it fails with the reason, not a crash.
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  ASSERT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  EXPECT_EQ(job.state(), v1::TuningJob::FAILED);
  EXPECT_EQ(job.error().code(), static_cast<int>(absl::StatusCode::kDataLoss));
  EXPECT_THAT(job.error().message(), HasSubstr("does not match its key"));
}

TEST_F(FileRefsTest, EachEpochCheckpointReplacesTheLastAndTheEndRemovesIt) {
  engine_options_.default_epochs = 3;
  Restart();
  MakeDataset("colours");
  const std::set<std::string> dataset_files = StoredKeys();
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  std::vector<std::string> seen;
  before_step_ = [&](int64_t step) {
    if (step != 3 && step != 5) return;  // after epochs 1 and 2
    const std::string key = MustGet("j1").checkpoint_key();
    ASSERT_TRUE(store::IsContentKey(key)) << key;
    auto bytes = files_->Read(key, 1000);
    ASSERT_OK(bytes);
    EXPECT_EQ(*bytes, absl::StrCat(R"({"epochs_completed":)", step / 2, "}"));
    seen.push_back(key);
  };
  ASSERT_TRUE(runner_->RunNextQueued());
  v1::TuningJob job = MustGet("j1");
  ASSERT_EQ(job.state(), v1::TuningJob::SUCCEEDED);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[0], seen[1]);
  // Finished: no checkpoint recorded or stored, no job folder; what stays
  // is the dataset and the published prompt set.
  EXPECT_EQ(job.checkpoint_key(), "");
  EXPECT_FALSE(fs::exists(dir_ + "/jobs/j1"));
  auto ps = prompt_sets_->Get("j1");
  ASSERT_OK(ps);
  std::set<std::string> expected = dataset_files;
  expected.insert(ps->content_key());
  EXPECT_EQ(StoredKeys(), expected);
}

// The local job folder is scratch: a runner without it (another replica,
// a new pod) resumes from the checkpoint the record names; a damaged
// checkpoint is reported and the job starts over instead of failing.
TEST_F(FileRefsTest, AResumeReadsTheCheckpointByKeyAndADamagedOneStartsOver) {
  engine_options_.default_epochs = 4;
  Restart();
  MakeDataset("colours");
  // Runs `id` until the end of epoch 2, where a graceful stop requeues it
  // (its checkpoint key stays recorded), then drops the local job folder
  // and starts a new runner, as a replica without that folder would.
  auto run_half_and_move = [&](const std::string& id) -> std::string {
    JobRunner* runner = runner_.get();
    before_step_ = [runner](int64_t step) {
      if (step == 5) runner->Stop();
    };
    EXPECT_TRUE(runner_->RunNextQueued());
    before_step_ = nullptr;
    v1::TuningJob job = MustGet(id);
    EXPECT_EQ(job.state(), v1::TuningJob::QUEUED);
    EXPECT_TRUE(store::IsContentKey(job.checkpoint_key())) << job.checkpoint_key();
    fs::remove_all(dir_ + "/jobs");
    Restart();
    return job.checkpoint_key();
  };
  ASSERT_OK(runner_->Create(JobRequest("good")));
  run_half_and_move("good");
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("good").state(), v1::TuningJob::SUCCEEDED);
  bool resumed = false;
  for (const auto& ev : Events("good")) {
    resumed |= ev.message().find("resumed from checkpoint after epoch 2") != std::string::npos;
  }
  EXPECT_TRUE(resumed);

  ASSERT_OK(runner_->Create(JobRequest("bad")));
  const std::string key = run_half_and_move("bad");
  std::ofstream(BlobPath(key)) << "damaged";
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("bad").state(), v1::TuningJob::SUCCEEDED);
  bool reported = false, bad_resumed = false;
  for (const auto& ev : Events("bad")) {
    if (ev.message().find("cannot be read") != std::string::npos) {
      reported = true;
      EXPECT_THAT(ev.message(), HasSubstr("DATA_LOSS"));
      EXPECT_EQ(ev.level(), v1::TuningJobEvent::WARNING);
    }
    bad_resumed |= ev.message().find("resumed from checkpoint") != std::string::npos;
  }
  EXPECT_TRUE(reported);
  EXPECT_FALSE(bad_resumed);
}

// An older data folder: files by name, records without keys. Before the
// move they are still read from there; the move stores them by content,
// names the keys in the records and removes the old files; a second run
// has nothing to do.
TEST_F(FileRefsTest, NameAddressedFilesMoveIntoTheFileStore) {
  MakeDataset("colours");
  ASSERT_OK(Import("old", FakePromptSetFile()));
  // Turn both into what an older version left.
  auto ds = datasets_->Get("colours");
  ASSERT_OK(ds);
  auto manifest = datasets_->ReadManifest(*ds);
  ASSERT_OK(manifest);
  const std::string legacy = dir_ + "/datasets/colours";
  fs::create_directories(legacy);
  int n = 0;
  for (auto split : {data::Split::kTrain, data::Split::kVal, data::Split::kTest}) {
    for (data::Item& item : manifest->mutable_items(split)) {
      auto bytes = files_->Read(item.path, 1 << 20);
      ASSERT_OK(bytes);
      item.path = absl::StrCat(n++, ".png");
      std::ofstream(legacy + "/" + item.path, std::ios::binary) << *bytes;
    }
  }
  std::ofstream(legacy + "/manifest.json") << SerializeDatasetManifest(*manifest);
  ds->clear_manifest_key();
  ASSERT_OK(DatasetTable(&store_).Update("colours", *ds, "ACTIVE"));
  auto ps = prompt_sets_->Get("old");
  ASSERT_OK(ps);
  fs::create_directories(dir_ + "/prompt_sets");
  std::ofstream(prompt_sets_->LegacyPath("old")) << FakePromptSetFile();
  ps->clear_content_key();
  ASSERT_OK(PromptSetTable(&store_).Update("old", *ps, "ACTIVE"));
  // A record whose old file is gone cannot move.
  ASSERT_OK(Import("lost", FakePromptSetFile("provp")));
  auto lost = prompt_sets_->Get("lost");
  ASSERT_OK(lost);
  lost->clear_content_key();
  ASSERT_OK(PromptSetTable(&store_).Update("lost", *lost, "ACTIVE"));
  fs::remove_all(dir_ + "/blobs/sha256");
  Restart();

  // Read from the old places before the move.
  auto old_manifest = datasets_->ReadManifest(*ds);
  ASSERT_OK(old_manifest);
  EXPECT_EQ(old_manifest->train.size(), 9u);
  EXPECT_OK(prompt_sets_->ReadFile("old"));

  FileMigrationResult moved = MigrateNameAddressedFiles(&store_, file_refs_.get(), dir_);
  EXPECT_EQ(moved.prompt_sets, 1);
  EXPECT_EQ(moved.datasets, 1);
  ASSERT_EQ(moved.failed.size(), 1u);
  EXPECT_THAT(moved.failed[0], HasSubstr("promptSets/lost"));
  EXPECT_FALSE(fs::exists(legacy));
  EXPECT_FALSE(fs::exists(prompt_sets_->LegacyPath("old")));
  ps = prompt_sets_->Get("old");
  ASSERT_OK(ps);
  EXPECT_EQ(ps->content_key(), store::ContentKey(FakePromptSetFile()));
  EXPECT_OK(prompt_sets_->Load("old"));
  ds = datasets_->Get("colours");
  ASSERT_OK(ds);
  ASSERT_TRUE(store::IsContentKey(ds->manifest_key()));
  auto new_manifest = datasets_->ReadManifest(*ds);
  ASSERT_OK(new_manifest);
  for (const auto& item : new_manifest->train) EXPECT_TRUE(store::IsContentKey(item.path));
  // The same bytes as uploaded, so the same keys: 3 images + manifest + set.
  EXPECT_EQ(StoredKeys().size(), 5u);
  ASSERT_OK(runner_->Create(JobRequest("j1")));
  ASSERT_TRUE(runner_->RunNextQueued());
  EXPECT_EQ(MustGet("j1").state(), v1::TuningJob::SUCCEEDED);

  FileMigrationResult again = MigrateNameAddressedFiles(&store_, file_refs_.get(), dir_);
  EXPECT_EQ(again.prompt_sets, 0);
  EXPECT_EQ(again.datasets, 0);
}

}  // namespace
}  // namespace provp::server
