// The preprocessing pool: every index runs exactly once, concurrent
// callers share the threads, the caller works too (a pool of 0 threads runs
// everything on it), and the work really spreads over several threads.
#include "server/state/preprocess_pool.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace provp::server {
namespace {

TEST(PreprocessPoolTest, EveryIndexRunsOnceWithManyCallers) {
  PreprocessPool pool(3);
  constexpr int kCallers = 6;
  constexpr int kItems = 200;
  std::vector<std::vector<std::atomic<int>>> runs(kCallers);
  for (auto& r : runs) r = std::vector<std::atomic<int>>(kItems);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 5; ++round) {
        pool.ParallelFor(kItems, [&](int i) { runs[c][i].fetch_add(1); });
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) {
    for (int i = 0; i < kItems; ++i) ASSERT_EQ(runs[c][i].load(), 5) << c << " " << i;
  }
}

TEST(PreprocessPoolTest, WorkSpreadsOverThePoolAndTheCaller) {
  PreprocessPool pool(3);
  std::mutex mu;
  std::set<std::thread::id> seen;
  pool.ParallelFor(8, [&](int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  EXPECT_GE(seen.size(), 2u);
  EXPECT_LE(seen.size(), 4u);
}

TEST(PreprocessPoolTest, NoThreadsRunsOnTheCaller) {
  PreprocessPool pool(0);
  EXPECT_EQ(pool.threads(), 0);
  std::set<std::thread::id> seen;
  int sum = 0;
  pool.ParallelFor(10, [&](int i) {
    seen.insert(std::this_thread::get_id());
    sum += i;
  });
  EXPECT_EQ(sum, 45);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(*seen.begin(), std::this_thread::get_id());
  pool.ParallelFor(0, [&](int) { FAIL(); });
}

}  // namespace
}  // namespace provp::server
