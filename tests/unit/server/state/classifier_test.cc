// Classification through the core with the fake engine (colour features):
// classes inline, from a class set or from a prompt set; per-image errors;
// request-level refusals with their reasons; embeddings.
#include "server/state/classifier.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/state/errors.h"
#include "tests/unit/server/state/core_fixture.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;

class ClassifierTest : public CoreFixture {
 protected:
  void SetUp() override {
    CoreFixture::SetUp();
    batcher_ = std::make_unique<Batcher>(engine_.get(), BatchingOptions());
    cache_ = std::make_unique<TextFeatureCache>(1 << 20);
    class_sets_ = std::make_unique<ClassSetRegistry>(&store_, &clock_, limits_);
    classifier_ = std::make_unique<Classifier>(engine_.get(), batcher_.get(), &preprocess_,
                                               cache_.get(), prompt_sets_.get(), class_sets_.get(),
                                               metrics_.get(), &clock_, limits_);
  }
  void TearDown() override {
    classifier_.reset();
    batcher_.reset();
    CoreFixture::TearDown();
  }
  absl::StatusOr<v1::ClassifyResponse> Classify(const v1::ClassifyRequest& req) {
    return classifier_->Classify(req, absl::InfiniteFuture(), [] { return false; });
  }

  PreprocessPool preprocess_{2};
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<TextFeatureCache> cache_;
  std::unique_ptr<ClassSetRegistry> class_sets_;
  std::unique_ptr<Classifier> classifier_;
};

TEST_F(ClassifierTest, InlineClassesWithAPerImageError) {
  v1::ClassifyRequest req;
  req.set_request_id("r1");
  for (const char* n : {"red", "green", "blue"}) req.mutable_inline_classes()->add_names(n);
  req.add_images()->set_encoded(SolidPng(230, 10, 10));
  req.add_images()->set_encoded("broken");
  req.add_images()->set_encoded(SolidPng(10, 10, 230));
  req.set_top_k(2);
  auto resp = Classify(req);
  ASSERT_OK(resp);
  EXPECT_EQ(resp->request_id(), "r1");
  ASSERT_EQ(resp->results_size(), 3);
  ASSERT_EQ(resp->results(0).prediction().labels_size(), 2);
  EXPECT_EQ(resp->results(0).prediction().labels(0).label(), "red");
  EXPECT_EQ(resp->results(2).prediction().labels(0).label(), "blue");
  EXPECT_EQ(resp->results(1).error().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(resp->class_names_size(), 3);
  // The second identical class list is a cache hit.
  ASSERT_OK(Classify(req));
  EXPECT_EQ(cache_->hits(), 1);
  EXPECT_EQ(cache_->misses(), 1);
}

// Issue 14: a request that cannot be queued is refused before its images
// are decoded or its class names encoded. The images here do not decode, so
// before the queue place was taken first this request was answered OK with
// one decode error per image, having paid for the decodes.
TEST_F(ClassifierTest, AFullQueueRefusesBeforeDecoding) {
  const BatchingOptions defaults;
  auto held = batcher_->Reserve(defaults.max_queue_images);
  ASSERT_OK(held);
  v1::ClassifyRequest req;
  for (const char* n : {"red", "green"}) req.mutable_inline_classes()->add_names(n);
  req.add_images()->set_encoded("not an image");
  req.add_images()->set_encoded("nor this");
  auto refused = Classify(req);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ReasonOf(refused.status()), "QUEUE_FULL");
  v1::EmbedImagesRequest embed;
  embed.add_images()->set_encoded("not an image");
  EXPECT_THAT(classifier_->EmbedImages(embed, absl::InfiniteFuture(), [] { return false; }),
              StatusIs(absl::StatusCode::kResourceExhausted));
  // Once the room is given back the same request is admitted and answered
  // with its per-image errors.
  *held = Batcher::Reservation();
  auto resp = Classify(req);
  ASSERT_OK(resp);
  ASSERT_EQ(resp->results_size(), 2);
  EXPECT_EQ(resp->results(0).error().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(batcher_->queued_images(), 0);
}

TEST_F(ClassifierTest, ClassSetsAndRefusals) {
  v1::CreateClassSetRequest cs;
  cs.set_class_set_id("rg");
  cs.mutable_class_set()->add_class_names("red");
  cs.mutable_class_set()->add_class_names("green");
  ASSERT_OK(class_sets_->Create(cs));
  v1::ClassifyRequest req;
  req.set_class_set("classSets/rg");
  req.add_images()->set_encoded(SolidPng(10, 230, 10));
  auto resp = Classify(req);
  ASSERT_OK(resp);
  EXPECT_EQ(resp->results(0).prediction().labels(0).label(), "green");

  req.set_class_set("classSets/none");
  EXPECT_THAT(Classify(req), StatusIs(absl::StatusCode::kNotFound));
  req.set_class_set("classSets/rg");
  req.set_top_k(-1);
  EXPECT_EQ(ReasonOf(Classify(req).status()), "INVALID_TOP_K");
  req.set_top_k(0);
  req.set_prompt_set("promptSets/absent");
  EXPECT_THAT(Classify(req), StatusIs(absl::StatusCode::kNotFound));
  v1::ClassifyRequest none;
  none.add_images()->set_encoded(SolidPng(1, 2, 3));
  EXPECT_EQ(ReasonOf(Classify(none).status()), "NO_CLASSES");
  EXPECT_EQ(ReasonOf(Classify(v1::ClassifyRequest()).status()), "NO_IMAGES");
}

TEST_F(ClassifierTest, EmbeddingsHaveTheEngineDimension) {
  v1::EmbedImagesRequest images;
  images.add_images()->set_encoded(SolidPng(1, 2, 3));
  images.add_images()->set_encoded("broken");
  auto ie = classifier_->EmbedImages(images, absl::InfiniteFuture(), [] { return false; });
  ASSERT_OK(ie);
  EXPECT_EQ(ie->embeddings(0).values_size(), engine_->info().embed_dim);
  EXPECT_NE(ie->embeddings(1).error().code(), 0);
  v1::EmbedTextsRequest texts;
  texts.add_texts("a red thing");
  auto te = classifier_->EmbedTexts(texts);
  ASSERT_OK(te);
  EXPECT_EQ(te->dimension(), engine_->info().embed_dim);
  EXPECT_EQ(ReasonOf(classifier_->EmbedTexts(v1::EmbedTextsRequest()).status()), "NO_TEXTS");
}

}  // namespace
}  // namespace provp::server
