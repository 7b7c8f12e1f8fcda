// The prompt-set, dataset and class-set registries on the in-memory store
// with the fake engine: lifecycles, what each refuses and with which
// reason, and that store failures are returned or logged, never lost.
#include <filesystem>
#include <fstream>

#include "core/util/error_reason.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/state/class_set_registry.h"
#include "server/state/errors.h"
#include "tests/unit/server/state/core_fixture.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;
using ::provp::testing::StoreOp;
using ::testing::HasSubstr;

// `variant` makes files of the same backbone differ (their content keys).
std::string FakePromptSetFile(const std::string& backbone,
                              const std::string& variant = "provp_ref") {
  return std::string(R"({"fake_prompt_set":1,"backbone":")") + backbone + R"(","variant":")" +
         variant + R"(","base_class_names":["red","green"],"novel_class_names":["blue"]})";
}

class RegistriesTest : public CoreFixture {
 protected:
  // Feeds an import stream: metadata, then the file in one chunk.
  absl::StatusOr<v1::PromptSet> Import(const std::string& id, const std::string& file,
                                       bool load = true) {
    std::vector<v1::ImportPromptSetRequest> msgs(1);
    msgs[0].mutable_metadata()->set_prompt_set_id(id);
    msgs[0].mutable_metadata()->set_load(load);
    if (!file.empty()) msgs.emplace_back().set_chunk(file);
    size_t next = 0;
    return prompt_sets_->Import([&](v1::ImportPromptSetRequest* m) {
      if (next >= msgs.size()) return false;
      *m = msgs[next++];
      return true;
    });
  }
};

TEST_F(RegistriesTest, ImportedPromptSetLoadsUnloadsAndDeletes) {
  auto ps = Import("p1", FakePromptSetFile("fake-backbone-0001"));
  ASSERT_OK(ps);
  EXPECT_EQ(ps->state(), v1::PromptSet::ACTIVE);
  EXPECT_EQ(ps->base_class_names_size(), 2);
  EXPECT_EQ(prompt_sets_->loaded_count(), 1);
  EXPECT_OK(prompt_sets_->GetLoaded("p1"));
  auto unloaded = prompt_sets_->Unload("p1");
  ASSERT_OK(unloaded);
  EXPECT_EQ(unloaded->state(), v1::PromptSet::UNLOADED);
  auto not_loaded = prompt_sets_->GetLoaded("p1");
  EXPECT_THAT(not_loaded, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReasonOf(not_loaded.status()), "PROMPT_SET_NOT_LOADED");
  ASSERT_OK(prompt_sets_->Load("p1"));
  auto file = prompt_sets_->ReadFile("p1");
  ASSERT_OK(file);
  EXPECT_THAT(*file, HasSubstr("fake_prompt_set"));
  // The file is kept by content key and goes with the last record using it.
  EXPECT_EQ(ps->content_key(), store::ContentKey(FakePromptSetFile("fake-backbone-0001")));
  EXPECT_TRUE(std::filesystem::exists(BlobPath(ps->content_key())));
  ASSERT_OK(prompt_sets_->Delete("p1"));
  EXPECT_THAT(prompt_sets_->Get("p1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(BlobPath(ps->content_key())));
  EXPECT_EQ(prompt_sets_->loaded_count(), 0);
}

TEST_F(RegistriesTest, ImportReasonsComeFromTheEngineNotFromMessages) {
  auto other = Import("p1", FakePromptSetFile("another-backbone"));
  EXPECT_THAT(other, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReasonOf(other.status()), util::kReasonBackboneMismatch);
  auto garbage = Import("p2", "not a prompt set");
  EXPECT_THAT(garbage, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ReasonOf(garbage.status()), "INVALID_PROMPT_SET_FILE");
  auto empty = Import("p3", "");
  EXPECT_EQ(ReasonOf(empty.status()), "EMPTY_FILE");
  // Nothing of the refused imports stays behind.
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/prompt_sets")) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
  auto stored = files_->List();
  ASSERT_OK(stored);
  EXPECT_TRUE(stored->empty());
  ASSERT_OK(Import("p4", FakePromptSetFile("fake-backbone-0001")));
  auto again = Import("p4", FakePromptSetFile("fake-backbone-0001"));
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(RegistriesTest, RecoverLoadsActiveSetsAndLogsOnesThatFail) {
  ASSERT_OK(Import("good", FakePromptSetFile("fake-backbone-0001")));
  auto imported = Import("broken", FakePromptSetFile("fake-backbone-0001", "provp"));
  ASSERT_OK(imported);
  std::ofstream(BlobPath(imported->content_key())) << "corrupted on disk";
  Restart();
  prompt_sets_->Recover();
  EXPECT_OK(prompt_sets_->GetLoaded("good"));
  auto broken = prompt_sets_->Get("broken");
  ASSERT_OK(broken);
  EXPECT_EQ(broken->state(), v1::PromptSet::FAILED);
  EXPECT_THAT(Logs(), HasSubstr("prompt set failed to load at startup"));
  // The damage is named as such, on load and on export, not a crash.
  EXPECT_THAT(prompt_sets_->Load("broken"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not match its key")));
  EXPECT_THAT(prompt_sets_->ReadFile("broken"), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(RegistriesTest, PromptSetsAndDatasetsInUseByAJobAreKept) {
  MakeDataset("colours");
  v1::CreateTuningJobRequest req = JobRequest("j1");
  ASSERT_OK(runner_->Create(req));
  auto ds = datasets_->Delete("colours");
  EXPECT_THAT(ds, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("tuningJobs/j1")));
  EXPECT_EQ(ReasonOf(ds), "DATASET_IN_USE");
  ASSERT_OK(runner_->Cancel("j1"));
  auto stored = files_->List();
  ASSERT_OK(stored);
  EXPECT_EQ(stored->size(), 4u);  // 3 distinct images (one per colour) + the manifest
  ASSERT_OK(datasets_->Delete("colours"));
  EXPECT_THAT(datasets_->Get("colours"), StatusIs(absl::StatusCode::kNotFound));
  // No record refers to its files any more: they are gone.
  stored = files_->List();
  ASSERT_OK(stored);
  EXPECT_TRUE(stored->empty());
}

TEST_F(RegistriesTest, DatasetUploadValidatesAndIsIdempotent) {
  MakeDataset("colours");
  auto ds = datasets_->Get("colours");
  ASSERT_OK(ds);
  EXPECT_EQ(ds->stats().num_train_images(), 9);
  EXPECT_EQ(ds->stats().max_shots(), 3);
  EXPECT_EQ(ds->novel_class_names(0), "blue");
  auto page = datasets_->List(0, "");
  ASSERT_OK(page);
  EXPECT_EQ(page->items.size(), 1u);

  // A label out of range fails the upload and leaves no staging folder.
  std::vector<v1::UploadDatasetRequest> msgs(2);
  msgs[0].mutable_metadata()->set_dataset_id("bad");
  msgs[0].mutable_metadata()->add_class_names("red");
  msgs[0].mutable_metadata()->set_request_id("req-bad");
  v1::LabeledImage* img = msgs[1].mutable_images()->add_images();
  img->set_encoded(SolidPng(200, 0, 0));
  img->set_label(3);
  size_t next = 0;
  auto read = [&](v1::UploadDatasetRequest* m) {
    if (next >= msgs.size()) return false;
    *m = msgs[next++];
    return true;
  };
  auto before = files_->List();
  ASSERT_OK(before);
  auto refused = datasets_->Upload(read);
  EXPECT_EQ(ReasonOf(refused.status()), "LABEL_OUT_OF_RANGE");
  // Nothing of the refused upload stays in the file store.
  auto after = files_->List();
  ASSERT_OK(after);
  EXPECT_EQ(after->size(), before->size());
  // An image over the pixel budget is IMAGE_TOO_LARGE (the decoder's reason).
  limits_.max_pixels_per_image = 10;
  Restart();
  img->set_label(0);
  next = 0;
  auto too_large = datasets_->Upload(read);
  EXPECT_EQ(ReasonOf(too_large.status()), "IMAGE_TOO_LARGE");
  // The same request id after success returns the dataset it made.
  limits_ = Limits();
  Restart();
  next = 0;
  ASSERT_OK(datasets_->Upload(read));
  msgs[0].mutable_metadata()->set_dataset_id("other");
  next = 0;
  auto same = datasets_->Upload(read);
  ASSERT_OK(same);
  EXPECT_EQ(same->name(), "datasets/bad");
}

TEST_F(RegistriesTest, RegisterOnlyReadsUnderTheDatasetRoots) {
  v1::RegisterDatasetRequest req;
  req.set_dataset_id("outside");
  req.set_path("/etc");
  auto refused = datasets_->Register(req);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(ReasonOf(refused.status()), "PATH_NOT_ALLOWED");
}

TEST_F(RegistriesTest, ClassSetsAreValidatedStoredAndListed) {
  ClassSetRegistry class_sets(&store_, &clock_, limits_);
  v1::CreateClassSetRequest req;
  req.set_class_set_id("animals");
  req.set_request_id("req-1");
  req.mutable_class_set()->add_class_names("cat");
  req.mutable_class_set()->add_class_names("dog");
  auto cs = class_sets.Create(req);
  ASSERT_OK(cs);
  EXPECT_EQ(cs->name(), "classSets/animals");
  EXPECT_EQ(cs->create_time().seconds(), absl::ToUnixSeconds(clock_.Now()));
  // Retried request: the same set, not a conflict.
  auto again = class_sets.Create(req);
  ASSERT_OK(again);
  EXPECT_EQ(again->etag(), cs->etag());
  req.clear_request_id();
  EXPECT_THAT(class_sets.Create(req), StatusIs(absl::StatusCode::kAlreadyExists));
  v1::CreateClassSetRequest dup;
  dup.set_class_set_id("dup");
  dup.mutable_class_set()->add_class_names("cat");
  dup.mutable_class_set()->add_class_names("cat");
  EXPECT_EQ(ReasonOf(class_sets.Create(dup).status()), "DUPLICATE_CLASS_NAME");
  auto page = class_sets.List(0, "");
  ASSERT_OK(page);
  EXPECT_EQ(page->items.size(), 1u);
  store_.FailNthCall(StoreOp::kDelete, 1);
  EXPECT_THAT(class_sets.Delete("animals"), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(class_sets.Delete("animals"));
  EXPECT_THAT(class_sets.Delete("animals"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace provp::server
