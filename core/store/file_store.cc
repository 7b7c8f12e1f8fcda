// Shared-folder implementation of FileStore (file_store.h). Atomicity comes
// from rename(2) within one filesystem: the temporary file lives under the
// same root, so on NFS/CephFS/EFS-style ReadWriteMany volumes the final
// name appears only once its bytes are written and fsynced. Two replicas
// storing the same content race harmlessly: both renames install identical
// bytes.
#include "core/store/file_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace provp::store {
namespace {

namespace fs = std::filesystem;
constexpr absl::string_view kPrefix = "sha256:";

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string HexDigest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
      out.push_back(kHex[md[i] >> 4]);
      out.push_back(kHex[md[i] & 15]);
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// The hex digest of a well-formed key.
absl::StatusOr<std::string> ParseKey(const std::string& key) {
  if (!absl::StartsWith(key, kPrefix) || key.size() != kPrefix.size() + 64) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' is not a sha256:<hex> key"));
  }
  std::string hex = key.substr(kPrefix.size());
  for (char c : hex) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) {
      return absl::InvalidArgumentError(absl::StrCat("'", key, "' is not a sha256:<hex> key"));
    }
  }
  return hex;
}

class SharedDirFileStore : public FileStore {
 public:
  explicit SharedDirFileStore(std::string root) : root_(std::move(root)) {}

  absl::StatusOr<std::string> Put(absl::string_view bytes) override {
    const std::string key = ContentKey(bytes);
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    if (fs::exists(PathOf(hex))) return key;
    RETURN_IF_ERROR(Install(hex, [&](int fd, const std::string& tmp) -> absl::Status {
      return WriteAll(fd, bytes.data(), bytes.size(), tmp);
    }));
    return key;
  }

  absl::StatusOr<std::string> PutFile(const std::string& path) override {
    // Copy to a temporary name while hashing, then rename to the digest.
    const std::string tmp = TempPath();
    int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) return ErrnoError("create", tmp);
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      ::close(out);
      ::unlink(tmp.c_str());
      return absl::NotFoundError(absl::StrCat("cannot read ", path));
    }
    Sha256 sha;
    std::string buf(1 << 20, '\0');
    absl::Status s;
    while (s.ok() && in) {
      in.read(buf.data(), buf.size());
      const std::streamsize n = in.gcount();
      if (n <= 0) break;
      sha.Update(buf.data(), n);
      s = WriteAll(out, buf.data(), n, tmp);
    }
    if (s.ok() && in.bad()) s = absl::DataLossError(absl::StrCat("reading ", path));
    if (s.ok() && ::fsync(out) != 0) s = ErrnoError("fsync", tmp);
    ::close(out);
    const std::string hex = sha.HexDigest();
    if (s.ok()) s = Rename(tmp, hex);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    return absl::StrCat(kPrefix, hex);
  }

  absl::StatusOr<std::string> LocalPath(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    std::string path = PathOf(hex);
    std::error_code ec;
    if (!fs::exists(path, ec)) return absl::NotFoundError(absl::StrCat(key, " is not stored"));
    return path;
  }

  absl::StatusOr<std::string> Read(const std::string& key, uint64_t max_bytes) override {
    ASSIGN_OR_RETURN(std::string path, LocalPath(key));
    ASSIGN_OR_RETURN(std::string data, util::ReadFile(path, max_bytes));
    if (ContentKey(data) != key) {
      return absl::DataLossError(absl::StrCat(path, " does not match its key ", key));
    }
    return data;
  }

  absl::StatusOr<bool> Contains(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    std::error_code ec;
    return fs::exists(PathOf(hex), ec);
  }

  absl::Status Remove(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    std::error_code ec;
    fs::remove(PathOf(hex), ec);
    if (ec) return absl::InternalError(absl::StrCat("remove ", key, ": ", ec.message()));
    return absl::OkStatus();
  }

  absl::Status Init() {
    std::error_code ec;
    fs::create_directories(root_ + "/tmp", ec);
    if (!ec) fs::create_directories(root_ + "/sha256", ec);
    if (ec)
      return absl::InvalidArgumentError(absl::StrCat("file store ", root_, ": ", ec.message()));
    return absl::OkStatus();
  }

 private:
  std::string PathOf(const std::string& hex) const {
    return absl::StrCat(root_, "/sha256/", hex.substr(0, 2), "/", hex);
  }

  std::string TempPath() {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    return absl::StrCat(root_, "/tmp/", getpid(), "-", rng(), ".part");
  }

  static absl::Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
    while (n > 0) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("write", path);
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }

  template <typename Fill>
  absl::Status Install(const std::string& hex, Fill&& fill) {
    const std::string tmp = TempPath();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("create", tmp);
    absl::Status s = fill(fd, tmp);
    if (s.ok() && ::fsync(fd) != 0) s = ErrnoError("fsync", tmp);
    ::close(fd);
    if (s.ok()) s = Rename(tmp, hex);
    if (!s.ok()) ::unlink(tmp.c_str());
    return s;
  }

  // Moves a complete, fsynced temporary file to its content path and
  // fsyncs the folder so the name survives a crash.
  absl::Status Rename(const std::string& tmp, const std::string& hex) {
    const std::string dir = absl::StrCat(root_, "/sha256/", hex.substr(0, 2));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", ec.message()));
    const std::string final_path = PathOf(hex);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) return ErrnoError("rename to", final_path);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return absl::OkStatus();
  }

  const std::string root_;
};

}  // namespace

std::string ContentKey(absl::string_view bytes) {
  Sha256 sha;
  sha.Update(bytes.data(), bytes.size());
  return absl::StrCat(kPrefix, sha.HexDigest());
}

absl::StatusOr<std::unique_ptr<FileStore>> OpenSharedDirFileStore(const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("file store root is empty");
  auto store = std::make_unique<SharedDirFileStore>(root);
  RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<FileStore>(std::move(store));
}

}  // namespace provp::store
