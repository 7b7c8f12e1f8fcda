// A util::Env that makes chosen file-system steps fail (LevelDB's ErrorEnv
// idea): tests arm it to fail the n-th mutating step from now with ENOSPC,
// EIO or any errno, optionally only steps of one kind or on paths holding a
// substring, once or for good ("disk full" stays full). It counts the steps
// it sees, so a test first counts the steps of an operation and then fails
// each one in turn. Thread-safe (a mutex around the schedule).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/util/env.h"

// Fails the enclosing Env call when the schedule says this step fails.
#define RETURN_IF_INJECTED(op, path)                                                             \
  do {                                                                                           \
    if (int provp_injected_ = Decide(op, path); provp_injected_ != 0) {                          \
      return util::ErrnoToStatus(provp_injected_, std::string("cannot ") + util::FileOpName(op), \
                                 path);                                                          \
    }                                                                                            \
  } while (0)

namespace provp::testing {

class FaultInjectionEnv : public util::EnvWrapper {
 public:
  explicit FaultInjectionEnv(util::Env* target = util::Env::Default()) : EnvWrapper(target) {}

  struct Fault {
    // 1 = the next matching step.
    int64_t nth = 1;
    int error = 0;  // ENOSPC, EIO, ...
    // Only steps of this kind count; empty = every mutating step.
    std::optional<util::FileOp> op;
    // Only paths containing this count; empty = any path.
    std::string path_contains;
    // After the first failure, every later matching step fails too.
    bool sticky = false;
  };

  void Arm(const Fault& fault) {
    std::lock_guard<std::mutex> lock(mu_);
    fault_ = fault;
    seen_ = 0;
    fired_ = 0;
    armed_ = true;
  }
  void Disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
  }
  // Matching steps seen since the last Arm / ResetCount.
  int64_t steps() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  // How many steps were failed since the last Arm.
  int64_t fired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }
  // Starts counting with no fault: Arm({nth = 0}) never fires.
  void CountOnly(std::optional<util::FileOp> op = std::nullopt, std::string path_contains = "") {
    Arm(Fault{0, 0, op, std::move(path_contains), false});
  }
  // Every step it has seen, as "op path", for test messages.
  std::vector<std::string> log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

  absl::StatusOr<std::unique_ptr<util::WritableFile>> NewWritableFile(
      const std::string& path) override {
    RETURN_IF_INJECTED(util::FileOp::kCreateFile, path);
    auto file = target()->NewWritableFile(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<util::WritableFile>(new File(this, path, std::move(*file)));
  }
  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    RETURN_IF_INJECTED(util::FileOp::kRename, to);
    return target()->RenameFile(from, to);
  }
  absl::Status RemoveFile(const std::string& path) override {
    RETURN_IF_INJECTED(util::FileOp::kRemove, path);
    return target()->RemoveFile(path);
  }
  absl::Status RemoveAll(const std::string& path) override {
    RETURN_IF_INJECTED(util::FileOp::kRemove, path);
    return target()->RemoveAll(path);
  }
  absl::Status CreateDirs(const std::string& path) override {
    RETURN_IF_INJECTED(util::FileOp::kCreateDir, path);
    return target()->CreateDirs(path);
  }
  absl::Status SyncDir(const std::string& path) override {
    RETURN_IF_INJECTED(util::FileOp::kSyncDir, path);
    return target()->SyncDir(path);
  }
  absl::Status CheckDatabaseStep(util::FileOp op, const std::string& path) override {
    RETURN_IF_INJECTED(op, path);
    return target()->CheckDatabaseStep(op, path);
  }

  // 0, or the errno the step `op` on `path` must fail with.
  int Decide(util::FileOp op, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(std::string(util::FileOpName(op)) + " " + path);
    if (!armed_) return 0;
    if (fault_.op && *fault_.op != op) return 0;
    if (!fault_.path_contains.empty() && path.find(fault_.path_contains) == std::string::npos) {
      return 0;
    }
    ++seen_;
    const bool hit =
        fault_.nth > 0 && (seen_ == fault_.nth || (fault_.sticky && seen_ > fault_.nth));
    if (!hit) return 0;
    ++fired_;
    return fault_.error;
  }

 private:
  class File : public util::WritableFile {
   public:
    File(FaultInjectionEnv* env, std::string path, std::unique_ptr<util::WritableFile> base)
        : env_(env), path_(std::move(path)), base_(std::move(base)) {}
    absl::Status Append(absl::string_view data) override {
      if (int err = env_->Decide(util::FileOp::kAppend, path_); err != 0) {
        // A full disk often takes part of the write first.
        base_->Append(data.substr(0, data.size() / 2)).IgnoreError();
        return util::ErrnoToStatus(err, "cannot write", path_);
      }
      return base_->Append(data);
    }
    absl::Status Sync() override {
      if (int err = env_->Decide(util::FileOp::kSync, path_); err != 0) {
        return util::ErrnoToStatus(err, "cannot fsync", path_);
      }
      return base_->Sync();
    }
    absl::Status Close() override { return base_->Close(); }

   private:
    FaultInjectionEnv* env_;
    std::string path_;
    std::unique_ptr<util::WritableFile> base_;
  };

  mutable std::mutex mu_;
  Fault fault_;
  bool armed_ = false;
  int64_t seen_ = 0;
  int64_t fired_ = 0;
  std::vector<std::string> log_;
};

#undef RETURN_IF_INJECTED

}  // namespace provp::testing
