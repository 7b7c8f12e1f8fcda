// Small file helpers shared by every module: whole-file reads with a size
// cap, and atomic writes (temporary file, fsync, rename, fsync of the
// directory) so a crash never leaves a half-written file in view; the
// temporary files a crash can leave are named so that a start-up sweep
// finds them (IsAtomicWriteTemp). Writes go through an Env (env.h), the
// fault-injection seam. Thread-compatible: functions touch only the paths
// they are given.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/env.h"

namespace provp::util {

// Reads the whole file. Fails with NOT_FOUND when it does not exist and
// with RESOURCE_EXHAUSTED when it is larger than max_bytes.
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     uint64_t max_bytes = uint64_t{1} << 34);

// Writes `data` to `path` atomically: readers see either the old file or
// the complete new one, also after a crash. On any failure the temporary
// file is removed (best effort) and `path` is untouched; the Status names
// the step and the file (ENOSPC -> RESOURCE_EXHAUSTED, EIO -> INTERNAL).
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data,
                             Env* env = Env::Default());

// True for the name (last path component) of a temporary file
// WriteFileAtomic creates: "<name>.provp-tmp-<pid>-<hex>". Only a crash
// between create and rename leaves one behind.
bool IsAtomicWriteTemp(absl::string_view file_name);

// 64-bit FNV-1a over bytes; `seed` chains calls. Used for fingerprints,
// never for security.
uint64_t Fnv1a64(const void* data, size_t size, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace provp::util
