// Load generator for the server: starts provp's gRPC server in-process on
// 127.0.0.1:0 (LibTorch engine with --model, or the fake engine), runs N
// concurrent clients issuing Classify with B images each over loopback for
// a fixed time, and reports images/s and p50/p99 latency, next to the
// engine's in-process image-encode throughput at the server's batch size
// (the ceiling the RPC path is compared with). With --target it drives
// running servers instead (e.g. "ipv4:127.0.0.1:5001,127.0.0.1:5002", spread
// by the round_robin policy): bench/multireplica compares one replica with
// two that way. Run by hand; not a test.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/image/image_io.h"
#include "provp/v1/classification.grpc.pb.h"
#include "server/server.h"
#ifdef PROVP_HAVE_TORCH_ENGINE
#include "core/engine/torch_engine.h"
#endif
#ifdef PROVP_HAVE_FAKE_ENGINE
#include "tests/testing/fake_engine.h"
#endif

namespace {

using Clock = std::chrono::steady_clock;

absl::StatusOr<std::unique_ptr<provp::engine::Engine>> MakeEngine(const std::string& model,
                                                                  const std::string& vocab,
                                                                  const std::string& device,
                                                                  int threads) {
  if (model.empty()) {
#ifdef PROVP_HAVE_FAKE_ENGINE
    return std::unique_ptr<provp::engine::Engine>(new provp::engine::FakeEngine());
#else
    return absl::InvalidArgumentError("--model is required (built without the test fake engine)");
#endif
  }
#ifdef PROVP_HAVE_TORCH_ENGINE
  provp::engine::TorchEngineOptions o;
  o.model_path = model;
  o.vocab_path = vocab;
  o.device = device;
  o.num_threads = threads;
  return provp::engine::CreateTorchEngine(o);
#else
  return absl::UnimplementedError("built without the LibTorch engine");
#endif
}

provp::engine::Image TestImage(int size, int seed) {
  provp::engine::Image img{size, size, {}};
  img.rgb.resize(static_cast<size_t>(size) * size * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i)
    img.rgb[i] = static_cast<uint8_t>((i * 31 + seed) & 255);
  return img;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

// N clients issuing Classify with `per_request` images for `seconds`;
// prints images/s, latency and (when inproc > 0) the ratio to it.
void RunLoad(const std::shared_ptr<grpc::Channel>& channel, const std::string& jpeg,
             int per_request, int clients, int seconds, double inproc) {
  std::vector<std::vector<double>> lat(clients);
  std::atomic<int64_t> images{0}, errors{0};
  auto start = Clock::now();
  auto end = start + std::chrono::seconds(seconds);
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      auto stub = provp::v1::ClassificationService::NewStub(channel);
      provp::v1::ClassifyRequest req;
      for (const char* n : {"cat", "dog", "car", "tree", "house"}) {
        req.mutable_inline_classes()->add_names(n);
      }
      for (int i = 0; i < per_request; ++i) req.add_images()->set_encoded(jpeg);
      while (Clock::now() < end) {
        grpc::ClientContext ctx;
        provp::v1::ClassifyResponse resp;
        auto t = Clock::now();
        grpc::Status s = stub->Classify(&ctx, req, &resp);
        if (!s.ok()) {
          ++errors;
          continue;
        }
        lat[c].push_back(std::chrono::duration<double>(Clock::now() - t).count());
        images += per_request;
      }
    });
  }
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  double ips = images / secs;
  std::printf(
      "images/request %-3d clients %-3d: %8.1f images/s  p50 %7.2f ms  p99 %7.2f ms  "
      "errors %lld",
      per_request, clients, ips, 1000 * Percentile(all, 0.5), 1000 * Percentile(all, 0.99),
      static_cast<long long>(errors.load()));
  if (inproc > 0) std::printf("  ratio to in-process %.2f", ips / inproc);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, vocab, device = "cpu", target;
  int clients = 8, seconds = 10, image_size = 224, threads = 0, max_batch = 32;
  std::vector<int> batch_sizes = {1, 16};
  CLI::App app{"provp server load generator"};
  app.add_option("--model", model, "CLIP weights (empty = fake engine)");
  app.add_option("--vocab", vocab, "BPE vocabulary");
  app.add_option("--device", device, "cpu / cuda");
  app.add_option("--clients", clients, "concurrent clients")->capture_default_str();
  app.add_option("--seconds", seconds, "duration per setting")->capture_default_str();
  app.add_option("--image-size", image_size, "square image side in pixels")->capture_default_str();
  app.add_option("--images-per-request", batch_sizes, "one or more of 1, 16, ...");
  app.add_option("--torch-threads", threads, "LibTorch threads (0 = default)");
  app.add_option("--max-batch-size", max_batch, "server dynamic batch size")->capture_default_str();
  app.add_option("--target", target,
                 "drive these running servers (gRPC target, round_robin) instead of an "
                 "in-process one");
  CLI11_PARSE(app, argc, argv);
  if (!target.empty()) {
    grpc::ChannelArguments args;
    args.SetLoadBalancingPolicyName("round_robin");
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    provp::engine::Image img = TestImage(image_size, 0);
    provp::image::RgbImage rgb{image_size, image_size, img.rgb};
    std::string jpeg = *provp::image::EncodeJpeg(rgb, 90);
    for (int per_request : batch_sizes) {
      RunLoad(channel, jpeg, per_request, clients, seconds, /*inproc=*/0);
    }
    return 0;
  }

  auto engine = MakeEngine(model, vocab, device, threads);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  // In-process ceiling: EncodeImages at the server's batch size.
  std::vector<provp::engine::Image> imgs;
  for (int i = 0; i < max_batch; ++i) imgs.push_back(TestImage(image_size, i));
  std::vector<const provp::engine::Image*> ptrs;
  for (auto& i : imgs) ptrs.push_back(&i);
  // Warm-up; a failure here shows up in the first timed call below.
  (*engine)->EncodeImages(ptrs, "").IgnoreError();
  int reps = 0;
  auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < std::max(2, seconds / 2)) {
    if (!(*engine)->EncodeImages(ptrs, "").ok()) return 1;
    ++reps;
  }
  double inproc = reps * max_batch / std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("backbone: %s\nin-process encode (batch %d, %dpx): %.1f images/s\n",
              (*engine)->info().description.c_str(), max_batch, image_size, inproc);

  char tmpl[] = "/tmp/provp_bench_XXXXXX";
  provp::server::ServerOptions so;
  so.listen_address = "127.0.0.1:0";
  so.data_dir = mkdtemp(tmpl);
  so.batching.max_batch_size = max_batch;
  so.batching.max_queue_images = 4096;
  so.limits.max_images_per_request = 256;
  auto server = provp::server::Server::Create(so, std::move(*engine));
  if (!server.ok() || !(*server)->Start().ok()) {
    std::fprintf(stderr, "server failed to start\n");
    return 1;
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                     grpc::InsecureChannelCredentials());
  provp::image::RgbImage rgb{image_size, image_size, imgs[0].rgb};
  std::string jpeg = *provp::image::EncodeJpeg(rgb, 90);
  for (int per_request : batch_sizes) {
    RunLoad(channel, jpeg, per_request, clients, seconds, inproc);
  }
  (*server)->Shutdown();
  std::error_code ec;
  std::filesystem::remove_all(so.data_dir, ec);
  if (ec)
    std::fprintf(stderr, "could not remove %s: %s\n", so.data_dir.c_str(), ec.message().c_str());
  return 0;
}
