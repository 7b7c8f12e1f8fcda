// SweepCrashLeftovers (crash_sweep.h) on std::filesystem for the walk and
// the Env for the removals.
#include "server/state/crash_sweep.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "core/util/file_util.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;

uint64_t SizeOf(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) {
    const auto n = fs::file_size(p, ec);
    return ec ? 0 : n;
  }
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

bool OldEnough(const fs::path& p, absl::Duration min_age, absl::Time now) {
  if (min_age <= absl::ZeroDuration()) return true;
  std::error_code ec;
  const auto mtime = fs::last_write_time(p, ec);
  if (ec) return false;
  // file_time_type's clock is not system_clock in C++17; go through now().
  const auto age = fs::file_time_type::clock::now() - mtime;
  return absl::FromChrono(age) >= min_age;
}

}  // namespace

CrashSweepResult SweepCrashLeftovers(const std::string& data_dir, absl::Duration min_age,
                                     absl::Time now, util::Env* env) {
  CrashSweepResult result;
  const fs::path root(data_dir);
  std::vector<fs::path> doomed;
  std::error_code ec;
  // Staging folders and import files, one level down.
  for (const auto& [sub, prefix] :
       {std::pair<const char*, const char*>{"datasets", ".upload-"}, {"prompt_sets", ".import-"}}) {
    for (auto it = fs::directory_iterator(root / sub, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (absl::StartsWith(it->path().filename().string(), prefix)) doomed.push_back(it->path());
    }
    ec.clear();
  }
  // Atomic-write temporaries anywhere (not inside folders already doomed).
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (absl::StartsWith(name, ".upload-") && it->is_directory(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && util::IsAtomicWriteTemp(name)) doomed.push_back(it->path());
  }
  for (const fs::path& p : doomed) {
    if (!OldEnough(p, min_age, now)) continue;
    const uint64_t size = SizeOf(p);
    absl::Status s = env->RemoveAll(p.string());
    const std::string rel = fs::relative(p, root, ec).string();
    if (s.ok()) {
      result.removed.push_back(rel.empty() ? p.string() : rel);
      result.bytes += size;
    } else {
      result.failed.push_back(std::string(s.message()));
    }
  }
  return result;
}

}  // namespace provp::server
