// Regression tests for the inputs the fuzzers (fuzz/, issue 14) found: each
// saved crash input under fuzz/regressions/ must now load to a clear
// INVALID_ARGUMENT instead of crashing or exhausting memory.
#include <string>

#include "core/clip/checkpoint_loader.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace provp::clip {
namespace {

using ::testing::HasSubstr;

std::string Regression(const std::string& name) {
  return std::string(PROVP_SOURCE_DIR) + "/fuzz/regressions/" + name;
}

// A torch.save archive whose data.pkl has one BINUNICODE length flipped to
// ~4 GiB: LibTorch 1.13's unpickler reserved that much before reading
// (libFuzzer: out-of-memory at 4.2 GB RSS).
TEST(Issue14Test, TorchSaveStringLengthPastTheEndIsRefusedBeforeAllocating) {
  auto ck = LoadCheckpoint(Regression("torch_save/oom-binunicode-length-8f6cc48d"));
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), absl::StatusCode::kInvalidArgument) << ck.status();
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("data.pkl claims"));
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("corrupt or truncated pickle"));
}

}  // namespace
}  // namespace provp::clip
