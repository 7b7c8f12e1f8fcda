// Helpers shared by the server integration tests: temporary directories,
// solid-colour PNG images, per-call credentials and google.rpc detail
// extraction. Header-only; test code only.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "core/image/image_io.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace provp::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/provp_it_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    (void)system(cmd.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A PNG of one colour, with a little noise so images differ.
inline std::string SolidPng(uint8_t r, uint8_t g, uint8_t b, int size = 16, int seed = 0) {
  image::RgbImage img;
  img.height = img.width = size;
  for (int i = 0; i < size * size; ++i) {
    int n = (i * 7 + seed * 13) % 5;
    img.pixels.push_back(static_cast<uint8_t>(std::min(255, r + n)));
    img.pixels.push_back(static_cast<uint8_t>(std::min(255, g + n)));
    img.pixels.push_back(static_cast<uint8_t>(std::min(255, b + n)));
  }
  auto png = image::EncodePng(img);
  EXPECT_TRUE(png.ok());
  return png.ok() ? *png : std::string();
}

inline std::unique_ptr<grpc::ClientContext> Ctx(const std::string& key, double deadline_s = 30) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!key.empty()) ctx->AddMetadata("authorization", "Bearer " + key);
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(deadline_s * 1000)));
  return ctx;
}

inline std::string ReasonOf(const google::rpc::Status& rpc) {
  for (const auto& any : rpc.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

// ErrorInfo.reason from the trailer of a failed call ("" when absent).
inline std::string ReasonOf(const grpc::Status& s) {
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(s.error_details())) return "";
  return ReasonOf(rpc);
}

inline std::string FieldOf(const grpc::Status& s) {
  google::rpc::Status rpc;
  if (!rpc.ParseFromString(s.error_details())) return "";
  for (const auto& any : rpc.details()) {
    google::rpc::BadRequest br;
    if (any.UnpackTo(&br) && br.field_violations_size() > 0) return br.field_violations(0).field();
  }
  return "";
}

}  // namespace provp::testing
