// Implementation of file_util.h: reads on POSIX calls, writes through an Env.
#include "core/util/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace provp::util {
namespace {

// Marks WriteFileAtomic's temporary files for the start-up sweep.
constexpr char kTempMarker[] = ".provp-tmp-";

absl::Status ErrnoStatus(const std::string& what, const std::string& path) {
  return ErrnoToStatus(errno, what, path);
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    absl::Status s = ErrnoStatus("cannot stat", path);
    ::close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory, not a file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat(path, " is ", st.st_size, " bytes, over the limit of ", max_bytes));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = ErrnoStatus("cannot read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;  // File shrank while reading.
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(done);
  return data;
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, Env* env) {
  std::random_device rd;
  const std::string tmp =
      absl::StrCat(path, kTempMarker, ::getpid(), "-", absl::Hex(rd(), absl::kZeroPad8));
  auto write = [&]() -> absl::Status {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = env->NewWritableFile(tmp);
    if (!file.ok()) return file.status();
    absl::Status s = (*file)->Append(data);
    if (s.ok()) s = (*file)->Sync();
    absl::Status closed = (*file)->Close();
    if (s.ok()) s = closed;
    if (s.ok()) s = env->RenameFile(tmp, path);
    if (!s.ok()) {
      // The temporary file is not visible under `path`; remove it now (a
      // crash instead leaves it to the start-up sweep).
      env->RemoveFile(tmp).IgnoreError();
    }
    return s;
  };
  RETURN_IF_ERROR(write());
  // Make the rename itself durable. The new contents are already in place,
  // so a failure here is reported: the caller must not assume durability.
  absl::Status synced = env->SyncDir(DirName(path));
  if (!synced.ok()) {
    return absl::Status(
        synced.code(),
        absl::StrCat(path, " was written but may not survive a power cut: ", synced.message()));
  }
  return absl::OkStatus();
}

bool IsAtomicWriteTemp(absl::string_view file_name) {
  const size_t at = file_name.rfind(kTempMarker);
  if (at == absl::string_view::npos || at == 0) return false;
  absl::string_view rest = file_name.substr(at + std::strlen(kTempMarker));
  const size_t dash = rest.find('-');
  if (dash == absl::string_view::npos || dash == 0 || dash + 1 == rest.size()) return false;
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (i == dash) continue;
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

uint64_t Fnv1a64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace provp::util
