// Dynamic batching: concurrent requests share executions, results go back
// to the right request, requests of different prompt sets share one
// execution (or not, with mix_prompt_sets off), a failing prompt set fails
// only its own request, expired work never reaches the engine, and a full
// queue is RESOURCE_EXHAUSTED.
#include "server/state/batcher.h"

#include <stdlib.h>

#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "server/state/errors.h"
#include "server/state/text_feature_cache.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::StatusIs;

engine::Image Solid(uint8_t r, uint8_t g, uint8_t b) {
  engine::Image img{4, 4, {}};
  for (int i = 0; i < 16; ++i) img.rgb.insert(img.rgb.end(), {r, g, b});
  return img;
}

TEST(BatcherTest, ConcurrentRequestsShareExecutionsAndGetTheirOwnRows) {
  engine::FakeEngineOptions fo;
  fo.encode_milliseconds = 20;
  engine::FakeEngine eng(fo);
  BatchingOptions bo;
  bo.max_batch_size = 64;
  bo.max_queue_delay_us = 20000;
  Batcher batcher(&eng, bo);
  const int kClients = 8;
  std::vector<engine::Image> images;
  for (int i = 0; i < kClients; ++i) images.push_back(Solid(i % 2 ? 255 : 0, i % 2 ? 0 : 255, 0));
  std::vector<absl::StatusOr<BatchResult>> results(kClients, absl::UnknownError(""));
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = batcher.Encode("", {&images[i]}, absl::InfiniteFuture(), nullptr); });
  }
  for (auto& t : threads) t.join();
  auto expected = eng.EncodeImages({&images[0], &images[1]}, "");
  ASSERT_OK(expected);
  int max_batch = 0;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_OK(results[i]);
    ASSERT_EQ(results[i]->features.rows, 1);
    // Odd clients sent red, even green: rows must match their own image.
    EXPECT_FLOAT_EQ(results[i]->features.data[0], expected->row(i % 2)[0]);
    max_batch = std::max(max_batch, results[i]->batch_size);
  }
  EXPECT_GT(max_batch, 1);
  EXPECT_LT(eng.encode_calls(), 1 + kClients);  // +1: the call computing `expected`
}

// A FakeEngine prompt-set file whose bias moves every feature by `shift`.
std::string FakePromptSetFile(const std::string& name, float shift) {
  char tmpl[] = "/tmp/provp_batcher_XXXXXX";
  const std::string path = std::string(mkdtemp(tmpl)) + "/" + name + ".json";
  std::ofstream out(path);
  out << "{\"fake_prompt_set\": true, \"backbone\": \"fake-backbone-0001\", \"bias\": [";
  for (int i = 0; i < 16; ++i) out << (i ? "," : "") << shift;
  out << "]}";
  return path;
}

// Runs one request per prompt set concurrently; returns the largest batch
// any request reports.
int MaxBatchAcrossSets(engine::Engine* eng, bool mix, const std::vector<std::string>& sets,
                       std::vector<absl::StatusOr<BatchResult>>* results) {
  BatchingOptions bo;
  bo.max_batch_size = 64;
  bo.max_queue_delay_us = 50000;
  bo.mix_prompt_sets = mix;
  Batcher batcher(eng, bo);
  static const engine::Image image = Solid(10, 200, 30);
  results->assign(sets.size(), absl::UnknownError(""));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < sets.size(); ++i) {
    threads.emplace_back([&, i] {
      (*results)[i] = batcher.Encode(sets[i], {&image}, absl::InfiniteFuture(), nullptr);
    });
  }
  for (auto& t : threads) t.join();
  int max_batch = 0;
  for (const auto& r : *results) {
    if (r.ok()) max_batch = std::max(max_batch, r->batch_size);
  }
  return max_batch;
}

TEST(BatcherTest, DifferentPromptSetsShareAnExecutionUnlessMixingIsOff) {
  engine::FakeEngineOptions fo;
  fo.encode_milliseconds = 20;
  engine::FakeEngine eng(fo);
  ASSERT_OK(eng.LoadPromptSet("a", FakePromptSetFile("a", 0.5f)));
  ASSERT_OK(eng.LoadPromptSet("b", FakePromptSetFile("b", -0.5f)));
  const std::vector<std::string> sets = {"a", "b", "", "a", "b", ""};
  std::vector<absl::StatusOr<BatchResult>> mixed, separate;
  EXPECT_GT(MaxBatchAcrossSets(&eng, true, sets, &mixed), 2);
  EXPECT_LE(MaxBatchAcrossSets(&eng, false, sets, &separate), 2);
  for (size_t i = 0; i < sets.size(); ++i) {
    ASSERT_OK(mixed[i]);
    ASSERT_OK(separate[i]);
    EXPECT_EQ(mixed[i]->features.data, separate[i]->features.data) << sets[i];
  }
}

TEST(BatcherTest, AMissingPromptSetFailsOnlyItsOwnRequestInAMixedBatch) {
  engine::FakeEngineOptions fo;
  fo.encode_milliseconds = 5;
  engine::FakeEngine eng(fo);
  ASSERT_OK(eng.LoadPromptSet("a", FakePromptSetFile("a", 0.5f)));
  std::vector<absl::StatusOr<BatchResult>> results;
  MaxBatchAcrossSets(&eng, true, {"a", "missing", "", "a"}, &results);
  EXPECT_OK(results[0]);
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_OK(results[2]);
  EXPECT_OK(results[3]);
}

TEST(BatcherTest, ExpiredDeadlineIsDroppedBeforeTheEngine) {
  engine::FakeEngine eng;
  Batcher batcher(&eng, BatchingOptions{});
  engine::Image img = Solid(1, 2, 3);
  auto r = batcher.Encode("", {&img}, absl::Now() - absl::Seconds(1), nullptr);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDeadlineExceeded));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(eng.encode_calls(), 0);
}

TEST(BatcherTest, FullQueueIsResourceExhausted) {
  engine::FakeEngineOptions fo;
  fo.encode_milliseconds = 200;
  engine::FakeEngine eng(fo);
  BatchingOptions bo;
  bo.max_batch_size = 1;
  bo.max_queue_images = 2;
  bo.max_queue_delay_us = 0;
  Batcher batcher(&eng, bo);
  engine::Image img = Solid(1, 2, 3);
  std::vector<std::thread> threads;
  std::atomic<int> exhausted{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = batcher.Encode("", {&img}, absl::InfiniteFuture(), nullptr);
      if (r.status().code() == absl::StatusCode::kResourceExhausted) {
        EXPECT_EQ(ReasonOf(r.status()), "QUEUE_FULL");
        ++exhausted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(exhausted.load(), 0);
}

// A reservation holds queue room from before decoding until Encode queues
// the images; dropping it unused gives the room back, and Encode takes no
// more images than were reserved.
TEST(BatcherTest, ReservationsHoldQueueRoomUntilUsedOrDropped) {
  engine::FakeEngine eng;
  BatchingOptions bo;
  bo.max_queue_images = 4;
  Batcher batcher(&eng, bo);
  auto three = batcher.Reserve(3);
  ASSERT_OK(three);
  EXPECT_EQ(three->images(), 3);
  auto two = batcher.Reserve(2);
  EXPECT_THAT(two, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ReasonOf(two.status()), "QUEUE_FULL");
  auto one = batcher.Reserve(1);
  ASSERT_OK(one);
  *one = Batcher::Reservation();  // dropped unused: its room comes back
  ASSERT_OK(batcher.Reserve(1));  // a temporary: reserved and dropped at once
  engine::Image img = Solid(1, 2, 3);
  // Two of the three reserved images decoded: the request is queued with two.
  auto r = batcher.Encode(std::move(*three), "", {&img, &img}, absl::InfiniteFuture(), nullptr);
  ASSERT_OK(r);
  EXPECT_EQ(r->features.rows, 2);
  EXPECT_EQ(batcher.queued_images(), 0);
  // Everything was given back: the whole queue can be reserved again.
  auto all = batcher.Reserve(4);
  ASSERT_OK(all);
  *all = Batcher::Reservation();
  auto small = batcher.Reserve(1);
  ASSERT_OK(small);
  EXPECT_THAT(batcher.Encode(std::move(*small), "", {&img, &img}, absl::InfiniteFuture(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // An empty queue admits one request however large, as before.
  EXPECT_OK(batcher.Reserve(100));
}

TEST(BatcherTest, EngineErrorsReachEveryRequestOfTheBatch) {
  engine::FakeEngineOptions fo;
  fo.fail_encode = true;
  engine::FakeEngine eng(fo);
  Batcher batcher(&eng, BatchingOptions{});
  engine::Image img = Solid(1, 2, 3);
  EXPECT_THAT(batcher.Encode("", {&img}, absl::InfiniteFuture(), nullptr),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(batcher.Encode("missing", {&img}, absl::InfiniteFuture(), nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(TextFeatureCacheTest, HitsMissesAndEviction) {
  TextFeatureCache cache(/*capacity_bytes=*/2000);
  int computed = 0;
  auto make = [&] {
    ++computed;
    engine::FeatureMatrix m;
    m.rows = 2;
    m.dim = 100;
    m.data.assign(200, 1.0f);  // 800 bytes
    return absl::StatusOr<engine::FeatureMatrix>(m);
  };
  std::string a = TextFeatureCache::Key("bb", {"t"}, {"cat", "dog"});
  std::string b = TextFeatureCache::Key("bb", {"t"}, {"catdog"});
  EXPECT_NE(a, b);
  EXPECT_NE(a, TextFeatureCache::Key("other", {"t"}, {"cat", "dog"}));
  ASSERT_OK(cache.GetOrCompute(a, make));
  ASSERT_OK(cache.GetOrCompute(a, make));
  EXPECT_EQ(computed, 1);
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(cache.misses(), 1);
  ASSERT_OK(cache.GetOrCompute(b, make));
  ASSERT_OK(cache.GetOrCompute(TextFeatureCache::Key("bb", {}, {"x"}), make));
  EXPECT_LE(cache.bytes(), 2000);
  EXPECT_EQ(cache.entries(), 2);  // `a` was evicted
  ASSERT_OK(cache.GetOrCompute(a, make));
  EXPECT_EQ(computed, 4);
  auto failing = cache.GetOrCompute(
      "k", [] { return absl::StatusOr<engine::FeatureMatrix>(absl::InvalidArgumentError("bad")); });
  EXPECT_THAT(failing, StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace provp::server
