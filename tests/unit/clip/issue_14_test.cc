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

// A 1.5 KB torch.save archive whose data.pkl has its bytes shuffled so that
// a LONG_BINPUT stores memo entry 976,356,657: LibTorch 1.13's unpickler
// grew its memo table to that many IValues first (libFuzzer, 40-minute run:
// out-of-memory asking for 31 GB). The check stops at the first id out of
// sequence (104, after 4 entries).
TEST(Issue14Test, TorchSaveMemoIdPastTheNextIsRefusedBeforeAllocating) {
  auto ck = LoadCheckpoint(Regression("torch_save/oom-long-binput-memo-fc3a3f2a"));
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), absl::StatusCode::kInvalidArgument) << ck.status();
  EXPECT_THAT(std::string(ck.status().message()),
              HasSubstr("stores memo entry 104 at offset 138 after only 4 entries"));
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("corrupt pickle"));
}

// A TorchScript archive whose code/__torch__.py.debug_pkl (source ranges,
// unpickled only while LibTorch builds an error message about the code)
// stores a memo entry far out of sequence: out-of-memory asking for 32 GB
// (libFuzzer). Its debug pickles are now checked like data.pkl.
TEST(Issue14Test, TorchScriptDebugPickleIsCheckedToo) {
  auto ck = LoadCheckpoint(Regression("torchscript/oom-debug-pkl-memo-7077fd1b"));
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), absl::StatusCode::kInvalidArgument) << ck.status();
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("debug_pkl"));
}

// A TorchScript archive whose debug pickle is wrongly typed: LibTorch 1.13
// freed memory it never allocated while unpickling it to highlight an error
// in the code (ASan bad-free; glibc aborts). LibTorch no longer sees debug
// pickles (the weights are read without the code, ScriptStateReader), and
// this one is refused first anyway: its TUPLE3 pops three items where two
// are (the stack walk of the pickle check).
TEST(Issue14Test, TorchScriptDebugPicklesNeverReachLibTorch) {
  auto ck = LoadCheckpoint(Regression("torchscript/bad-free-debug-pkl-fa6488f1"));
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), absl::StatusCode::kInvalidArgument) << ck.status();
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("debug_pkl"));
}

// A 2.4 KB TorchScript archive whose code/__torch__.py made LibTorch 1.13's
// TorchScript compiler dereference a bad pointer in
// ScriptTypeParser::parseClassConstant (SEGV) while torch::jit::load
// compiled it. Weights are now read from data.pkl without compiling the
// code (ScriptStateReader), so the file is just a bad checkpoint.
TEST(Issue14Test, TorchScriptCodeIsNeverCompiled) {
  auto ck = LoadCheckpoint(Regression("torchscript/segv-class-constant-e6004a39"));
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), absl::StatusCode::kInvalidArgument) << ck.status();
}

// A TorchScript archive whose data.pkl begins PROTO, BUILD: LibTorch 1.13's
// unpickler swapped the two top items of an empty stack (SEGV at address
// -0x18; found by a 30-minute fuzz run of the new loader). The opcode walk
// now follows the stack and refuses pops that are not there, for torch.save
// archives too (they share the walk).
TEST(Issue14Test, PicklePopsPastTheStackAreRefused) {
  auto ck = LoadCheckpoint(Regression("torchscript/segv-build-on-empty-stack-c24aa9d9"));
  ASSERT_FALSE(ck.ok());
  EXPECT_EQ(ck.status().code(), absl::StatusCode::kInvalidArgument) << ck.status();
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("pops 2 items but 0 are there"));
}

}  // namespace
}  // namespace provp::clip
