// Fuzzes an UploadDataset message sequence through the server's own path:
// the input is split into messages (each a 2-byte little-endian length and
// that many bytes; a short tail is the last message), each parsed with
// ParseRequest as the stream's RequestReader does, and fed to
// DatasetRegistry::Upload (metadata checks, labels, the byte and image
// limits, image decoding under the pixel budget, staging, the manifest and
// the record) on the real SQLite store. Invariants: parse refusals are
// MALFORMED_MESSAGE and never the safety net; a failed upload leaves no
// staging folder and no dataset; a stored dataset counts exactly the images
// sent and is deleted again so the next run starts from the seed state.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/data/dataset.h"
#include "fuzz/server_core.h"
#include "provp/v1/dataset.pb.h"

namespace {

std::vector<std::string> SplitMessages(const uint8_t* data, size_t size) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < size) {
    if (size - at < 2) {
      out.emplace_back(reinterpret_cast<const char*>(data + at), size - at);
      break;
    }
    const size_t len = data[at] | (static_cast<size_t>(data[at + 1]) << 8);
    at += 2;
    const size_t n = std::min(len, size - at);
    out.emplace_back(reinterpret_cast<const char*>(data + at), n);
    at += n;
  }
  return out;
}

bool StagingLeft(const std::string& datasets_dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(datasets_dir, ec)) {
    if (absl::StartsWith(e.path().filename().string(), ".upload-")) return true;
  }
  return false;
}

// The files in the content-addressed file store (blobs/sha256/<2>/<64>).
size_t StoredFiles(const std::string& blobs_dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(blobs_dir + "/sha256", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) ++n;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using provp::fuzz::Require;
  provp::fuzz::ServerCore& core = provp::fuzz::Core();
  const std::vector<std::string> messages = SplitMessages(data, size);
  size_t next = 0;
  int64_t images_sent = 0;
  absl::Status parse_error;
  auto read = [&](provp::v1::UploadDatasetRequest* msg) -> absl::StatusOr<bool> {
    if (next >= messages.size()) return false;
    absl::Status parsed = provp::server::ParseRequest(messages[next++], msg);
    if (!parsed.ok()) {
      provp::fuzz::RequireMalformed(parsed);
      parse_error = parsed;
      return parsed;
    }
    if (msg->has_images()) images_sent += msg->images().images_size();
    return true;
  };
  const size_t files_before = StoredFiles(core.dir + "/blobs");
  absl::StatusOr<provp::v1::Dataset> ds = core.datasets->Upload(read);
  const std::string datasets_dir = core.dir + "/datasets";
  Require(!StagingLeft(datasets_dir), "no staging folder is left behind", ds.status());
  if (!ds.ok()) {
    // The images a refused upload stored as they arrived are taken back.
    Require(StoredFiles(core.dir + "/blobs") == files_before,
            "a refused upload leaves the file store as it was", ds.status());
    const absl::StatusCode c = ds.status().code();
    Require(c == absl::StatusCode::kInvalidArgument || c == absl::StatusCode::kAlreadyExists ||
                c == absl::StatusCode::kResourceExhausted,
            "Upload refuses with a client-side code", ds.status());
    if (!parse_error.ok()) Require(ds.status() == parse_error, "a parse error ends the upload");
    return 0;
  }
  Require(absl::StartsWith(ds->name(), "datasets/"), "a dataset is named datasets/...");
  const std::string id = ds->name().substr(std::string("datasets/").size());
  Require(ds->stats().num_images() == images_sent, "a stored dataset counts every image sent");
  absl::StatusOr<provp::data::Dataset> manifest = core.datasets->ReadManifest(*ds);
  Require(manifest.ok(), "a stored dataset has a readable manifest", manifest.status());
  Require(static_cast<int64_t>(manifest->train.size() + manifest->val.size() +
                               manifest->test.size()) == images_sent,
          "the manifest lists every image sent");
  absl::Status deleted = core.datasets->Delete(id);
  Require(deleted.ok(), "delete the uploaded dataset", deleted);
  // Its files go with it, except those the seed dataset shares.
  Require(StoredFiles(core.dir + "/blobs") == files_before,
          "a deleted dataset leaves the file store as it was");
  std::error_code ec;
  std::filesystem::remove_all(datasets_dir + "/" + id, ec);
  return 0;
}
