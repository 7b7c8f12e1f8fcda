// Shared-folder implementation of FileStore (file_store.h). Atomicity comes
// from rename(2) within one filesystem: the temporary file lives under the
// same root, so on NFS/CephFS/EFS-style ReadWriteMany volumes the final
// name appears only once its bytes are written and fsynced. Two replicas
// storing the same content race harmlessly: both renames install identical
// bytes. Every mutating step goes through the util::Env (the fault seam)
// except the stored-time refresh (utimensat), which changes no content.
#include "core/store/file_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
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
#include "absl/time/clock.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace provp::store {
namespace {

namespace fs = std::filesystem;
constexpr absl::string_view kPrefix = "sha256:";
constexpr size_t kHexSize = 64;
constexpr size_t kChunk = size_t{1} << 20;

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

bool IsHex(absl::string_view hex) {
  if (hex.size() != kHexSize) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
        absl::ascii_isupper(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// The hex digest of a well-formed key.
absl::StatusOr<std::string> ParseKey(const std::string& key) {
  if (!IsContentKey(key)) {
    return absl::InvalidArgumentError(absl::StrCat("'", key, "' is not a sha256:<hex> key"));
  }
  return key.substr(kPrefix.size());
}

absl::Time MtimeOf(const struct stat& st) {
  return absl::FromUnixSeconds(st.st_mtim.tv_sec) + absl::Nanoseconds(st.st_mtim.tv_nsec);
}

// Streams the file at `path` through SHA-256; NOT_FOUND when absent.
absl::StatusOr<std::string> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::ErrnoToStatus(errno == 0 ? ENOENT : errno, "cannot open", path);
  Sha256 sha;
  std::string buf(kChunk, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    sha.Update(buf.data(), static_cast<size_t>(n));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return sha.HexDigest();
}

class SharedDirFileStore : public FileStore {
 public:
  SharedDirFileStore(std::string root, util::Env* env) : root_(std::move(root)), env_(env) {}

  absl::StatusOr<std::string> DoPut(absl::string_view bytes, KeyKnown key_known) override {
    const std::string key = ContentKey(bytes);
    const std::string hex = key.substr(kPrefix.size());
    key_known(key);
    if (Refresh(hex, bytes.size())) return key;
    const std::string tmp = TempPath();
    absl::Status s = WriteTemp(tmp, [&](util::WritableFile& f) { return f.Append(bytes); });
    if (s.ok()) s = Install(tmp, hex);
    if (!s.ok()) return s;
    return key;
  }

  absl::StatusOr<std::string> DoPutFile(const std::string& path, KeyKnown key_known) override {
    // Copy to a temporary name while hashing, then rename to the digest.
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    Sha256 sha;
    uint64_t copied = 0;
    const std::string tmp = TempPath();
    absl::Status s = WriteTemp(tmp, [&](util::WritableFile& f) -> absl::Status {
      std::string buf(kChunk, '\0');
      while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const std::streamsize n = in.gcount();
        if (n <= 0) break;
        sha.Update(buf.data(), static_cast<size_t>(n));
        copied += static_cast<uint64_t>(n);
        RETURN_IF_ERROR(f.Append(absl::string_view(buf.data(), static_cast<size_t>(n))));
      }
      if (in.bad()) return absl::DataLossError(absl::StrCat("reading ", path));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    const std::string hex = sha.HexDigest();
    key_known(absl::StrCat(kPrefix, hex));
    if (Refresh(hex, copied)) {
      env_->RemoveFile(tmp).IgnoreError();
    } else {
      RETURN_IF_ERROR(Install(tmp, hex));
    }
    return absl::StrCat(kPrefix, hex);
  }

  absl::StatusOr<std::string> LocalPath(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    const std::string path = PathOf(hex);
    absl::StatusOr<std::string> digest = HashFile(path);
    if (!digest.ok()) {
      if (digest.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat(key, " is not stored (", path, ")"));
      }
      return digest.status();
    }
    if (*digest != hex) {
      return absl::DataLossError(
          absl::StrCat(path, " does not match its key ", key, " (the stored file is damaged)"));
    }
    return path;
  }

  absl::StatusOr<std::string> Read(const std::string& key, uint64_t max_bytes) override {
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    const std::string path = PathOf(hex);
    absl::StatusOr<std::string> data = util::ReadFile(path, max_bytes);
    if (!data.ok()) {
      if (data.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat(key, " is not stored (", path, ")"));
      }
      return data.status();
    }
    if (ContentKey(*data) != key) {
      return absl::DataLossError(
          absl::StrCat(path, " does not match its key ", key, " (the stored file is damaged)"));
    }
    return data;
  }

  absl::StatusOr<bool> Contains(const std::string& key) override {
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    std::error_code ec;
    return fs::exists(PathOf(hex), ec);
  }

  absl::StatusOr<std::vector<StoredFile>> List() override {
    std::vector<StoredFile> out;
    std::error_code ec;
    for (auto dir = fs::directory_iterator(root_ + "/sha256", ec); !ec && dir != fs::end(dir);
         dir.increment(ec)) {
      std::error_code inner;
      for (auto it = fs::directory_iterator(dir->path(), inner); !inner && it != fs::end(it);
           it.increment(inner)) {
        const std::string hex = it->path().filename().string();
        if (!IsHex(hex)) continue;  // not ours (a stray file)
        struct stat st {};
        if (::stat(it->path().c_str(), &st) != 0) continue;  // removed meanwhile
        out.push_back(
            StoredFile{absl::StrCat(kPrefix, hex), MtimeOf(st), static_cast<uint64_t>(st.st_size)});
      }
      if (inner) ec = inner;
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return util::ErrnoToStatus(ec.value(), "cannot list", root_ + "/sha256");
    }
    return out;
  }

  absl::StatusOr<bool> Remove(const std::string& key, absl::Time stored_before) override {
    ASSIGN_OR_RETURN(std::string hex, ParseKey(key));
    const std::string path = PathOf(hex);
    // Move it out of view first, then look at its stored time: a writer
    // that refreshed it before the move is seen here (it stays), one that
    // comes after the move finds no file and writes it again.
    const std::string trash = absl::StrCat(root_, "/trash/", hex, ".", RandomHex());
    absl::Status moved = env_->RenameFile(path, trash);
    if (!moved.ok()) {
      if (moved.code() == absl::StatusCode::kNotFound) return false;
      return moved;
    }
    struct stat st {};
    if (::stat(trash.c_str(), &st) != 0) {
      // Restored by an open's leftover pass of another process.
      return false;
    }
    if (MtimeOf(st) >= stored_before) {
      absl::Status back = env_->RenameFile(trash, path);
      if (!back.ok() && back.code() != absl::StatusCode::kNotFound) {
        return absl::Status(back.code(),
                            absl::StrCat("cannot put back ", key, " (left in ", trash,
                                         "; the next open restores it): ", back.message()));
      }
      return false;
    }
    absl::Status removed = env_->RemoveFile(trash);
    if (!removed.ok() && removed.code() != absl::StatusCode::kNotFound) return removed;
    return true;
  }

  absl::Status Open(absl::Duration leftover_min_age) {
    for (const char* sub : {"/tmp", "/sha256", "/trash"}) {
      absl::Status s = env_->CreateDirs(root_ + sub);
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("file store ", root_, ": ", s.message()));
      }
    }
    // Interrupted writes: their temporary files hold no key anyone uses.
    // Interrupted removals: the file may still be in use, so it goes back;
    // a later sweep removes it if nothing refers to it.
    const fs::file_time_type::clock::time_point now = fs::file_time_type::clock::now();
    auto old_enough = [&](const fs::directory_entry& e) {
      std::error_code ec;
      const auto mtime = e.last_write_time(ec);
      return !ec && absl::FromChrono(now - mtime) >= leftover_min_age;
    };
    std::error_code ec;
    for (auto it = fs::directory_iterator(root_ + "/tmp", ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (old_enough(*it)) env_->RemoveFile(it->path().string()).IgnoreError();
    }
    for (auto it = fs::directory_iterator(root_ + "/trash", ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string hex = name.substr(0, name.find('.'));
      if (!IsHex(hex) || !old_enough(*it)) continue;
      if (env_->CreateDirs(DirOf(hex)).ok()) {
        env_->RenameFile(it->path().string(), PathOf(hex)).IgnoreError();
      }
    }
    return absl::OkStatus();
  }

 private:
  std::string DirOf(const std::string& hex) const {
    return absl::StrCat(root_, "/sha256/", hex.substr(0, 2));
  }
  std::string PathOf(const std::string& hex) const { return absl::StrCat(DirOf(hex), "/", hex); }

  static std::string RandomHex() {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
  }

  std::string TempPath() const {
    return absl::StrCat(root_, "/tmp/", getpid(), "-", RandomHex(), ".part");
  }

  // Sets the stored time of an existing file to now; false when it is not
  // there or has the wrong size (then the caller writes it again, which
  // also repairs a truncated copy).
  bool Refresh(const std::string& hex, uint64_t size) const {
    const std::string path = PathOf(hex);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) != size) return false;
    return ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0;
  }

  // Creates `tmp`, lets `fill` write it, fsyncs and closes it; on failure
  // the temporary file is removed.
  template <typename Fill>
  absl::Status WriteTemp(const std::string& tmp, Fill&& fill) {
    absl::StatusOr<std::unique_ptr<util::WritableFile>> file = env_->NewWritableFile(tmp);
    if (!file.ok()) return file.status();
    absl::Status s = fill(**file);
    if (s.ok()) s = (*file)->Sync();
    absl::Status closed = (*file)->Close();
    if (s.ok()) s = closed;
    if (!s.ok()) env_->RemoveFile(tmp).IgnoreError();
    return s;
  }

  // Moves a complete, fsynced temporary file to its content path and
  // fsyncs the folder so the name survives a crash.
  absl::Status Install(const std::string& tmp, const std::string& hex) {
    const std::string dir = DirOf(hex);
    absl::Status s = env_->CreateDirs(dir);
    if (s.ok()) s = env_->RenameFile(tmp, PathOf(hex));
    if (!s.ok()) {
      env_->RemoveFile(tmp).IgnoreError();
      return s;
    }
    absl::Status synced = env_->SyncDir(dir);
    if (!synced.ok()) {
      return absl::Status(
          synced.code(), absl::StrCat(PathOf(hex), " was written but may not survive a power cut: ",
                                      synced.message()));
    }
    return absl::OkStatus();
  }

  const std::string root_;
  util::Env* const env_;
};

}  // namespace

std::string ContentKey(absl::string_view bytes) {
  Sha256 sha;
  sha.Update(bytes.data(), bytes.size());
  return absl::StrCat(kPrefix, sha.HexDigest());
}

bool IsContentKey(absl::string_view key) {
  return absl::StartsWith(key, kPrefix) && IsHex(key.substr(kPrefix.size()));
}

absl::StatusOr<std::unique_ptr<FileStore>> OpenSharedDirFileStore(const SharedDirOptions& options) {
  if (options.root.empty()) return absl::InvalidArgumentError("file store root is empty");
  auto store = std::make_unique<SharedDirFileStore>(
      options.root, options.env ? options.env : util::Env::Default());
  RETURN_IF_ERROR(store->Open(options.leftover_min_age));
  return std::unique_ptr<FileStore>(std::move(store));
}

absl::StatusOr<std::unique_ptr<FileStore>> OpenSharedDirFileStore(const std::string& root) {
  SharedDirOptions options;
  options.root = root;
  return OpenSharedDirFileStore(options);
}

}  // namespace provp::store
