// Load generator for the server: starts provp's gRPC server in-process on
// 127.0.0.1:0 (LibTorch engine with --model, or the fake engine), runs N
// concurrent clients issuing Classify with B images each over loopback for
// a fixed time, and reports images/s and p50/p99 latency, next to the
// engine's in-process image-encode throughput at the server's batch size
// (the ceiling the RPC path is compared with). With --target it drives
// running servers instead (e.g. "ipv4:127.0.0.1:5001,127.0.0.1:5002", spread
// by the round_robin policy): bench/multireplica compares one replica with
// two that way. With --prompt-sets N the requests spread over N prompt sets
// (one tuned on a small synthetic dataset, imported N times), so executions
// mix prompt sets. With --tune-while-serving each setting runs again with a
// long tuning job on the same cores or GPU and reports its p99 beside the
// idle p99 (issue 11: inference first). Run by hand; not a test.
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
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/image/image_io.h"
#include "core/util/status_macros.h"
#include "provp/v1/classification.grpc.pb.h"
#include "provp/v1/dataset.grpc.pb.h"
#include "provp/v1/prompt_set.grpc.pb.h"
#include "provp/v1/tuning.grpc.pb.h"
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
                                                                  int threads, bool tuning_yield) {
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
  if (!tuning_yield) {
    o.tuning_yield_max_ms = 0;
    o.tuning_threads_when_serving = 0;
  }
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

struct LoadResult {
  double images_per_second = 0;
  double p50 = 0;
  double p99 = 0;
};

// N clients issuing Classify with `per_request` images for `seconds`;
// prints images/s, latency and (when inproc > 0) the ratio to it. Requests
// cycle through `prompt_sets` ("" = zero-shot when the list is empty).
LoadResult RunLoad(const std::shared_ptr<grpc::Channel>& channel,
                   const std::vector<std::string>& jpegs, int per_request, int clients, int seconds,
                   double inproc, const std::vector<std::string>& prompt_sets, const char* label) {
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
      // Images cycle through the sizes given (--image-size 224 480 640).
      for (int i = 0; i < per_request; ++i) {
        req.add_images()->set_encoded(jpegs[static_cast<size_t>(c + i) % jpegs.size()]);
      }
      size_t next = static_cast<size_t>(c) * 7;
      while (Clock::now() < end) {
        if (!prompt_sets.empty()) req.set_prompt_set(prompt_sets[next++ % prompt_sets.size()]);
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
  LoadResult r;
  r.images_per_second = images / secs;
  r.p50 = Percentile(all, 0.5);
  r.p99 = Percentile(all, 0.99);
  std::printf(
      "%-12s images/request %-3d clients %-3d: %8.1f images/s  p50 %7.2f ms  p99 %7.2f ms  "
      "errors %lld",
      label, per_request, clients, r.images_per_second, 1000 * r.p50, 1000 * r.p99,
      static_cast<long long>(errors.load()));
  if (inproc > 0) std::printf("  ratio to in-process %.2f", r.images_per_second / inproc);
  std::printf("\n");
  std::fflush(stdout);
  return r;
}

// One JPEG (quality 90) of the synthetic test image per side.
std::vector<std::string> Jpegs(const std::vector<int>& sides) {
  std::vector<std::string> out;
  for (size_t k = 0; k < sides.size(); ++k) {
    provp::engine::Image img = TestImage(sides[k], static_cast<int>(k));
    provp::image::RgbImage rgb{sides[k], sides[k], img.rgb};
    out.push_back(*provp::image::EncodeJpeg(rgb, 90));
  }
  return out;
}

std::unique_ptr<grpc::ClientContext> Context(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

// A small synthetic dataset for the tuning jobs: two classes of flat
// colours with noise, 4 train and 1 test image each.
absl::Status UploadBenchDataset(const std::shared_ptr<grpc::Channel>& channel, int size) {
  auto stub = provp::v1::DatasetService::NewStub(channel);
  auto ctx = Context(600);
  provp::v1::Dataset ds;
  auto w = stub->UploadDataset(ctx.get(), &ds);
  provp::v1::UploadDatasetRequest meta;
  meta.mutable_metadata()->set_dataset_id("bench");
  meta.mutable_metadata()->add_class_names("warm");
  meta.mutable_metadata()->add_class_names("cold");
  meta.mutable_metadata()->set_min_shots(1);
  w->Write(meta);
  provp::v1::UploadDatasetRequest chunk;
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < 5; ++i) {
      provp::engine::Image img = TestImage(size, 40 * c + i);
      for (size_t p = 0; p < img.rgb.size(); p += 3) img.rgb[p + (c == 0 ? 0 : 2)] = 230;
      provp::image::RgbImage rgb{size, size, img.rgb};
      auto* item = chunk.mutable_images()->add_images();
      item->set_label(c);
      item->set_encoded(*provp::image::EncodeJpeg(rgb, 90));
      item->set_split(i < 4 ? provp::v1::TRAIN : provp::v1::TEST);
    }
  }
  w->Write(chunk);
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) return absl::InternalError("upload: " + s.error_message());
  return absl::OkStatus();
}

absl::Status StartJob(const std::shared_ptr<grpc::Channel>& channel, const std::string& id,
                      int epochs) {
  auto stub = provp::v1::TuningService::NewStub(channel);
  provp::v1::CreateTuningJobRequest req;
  req.set_tuning_job_id(id);
  auto* j = req.mutable_tuning_job();
  j->set_dataset("datasets/bench");
  j->mutable_hyperparameters()->set_shots(4);
  j->mutable_hyperparameters()->set_epochs(epochs);
  j->mutable_hyperparameters()->set_batch_size(4);
  provp::v1::TuningJob job;
  auto ctx = Context(60);
  grpc::Status s = stub->CreateTuningJob(ctx.get(), req, &job);
  if (!s.ok()) return absl::InternalError("create job: " + s.error_message());
  return absl::OkStatus();
}

// Polls until the job is in `want` (or has ended); returns its state.
provp::v1::TuningJob::State WaitJob(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::string& id, provp::v1::TuningJob::State want) {
  auto stub = provp::v1::TuningService::NewStub(channel);
  while (true) {
    provp::v1::GetTuningJobRequest req;
    req.set_name("tuningJobs/" + id);
    provp::v1::TuningJob job;
    auto ctx = Context(60);
    if (!stub->GetTuningJob(ctx.get(), req, &job).ok()) return provp::v1::TuningJob::FAILED;
    const auto st = job.state();
    if (st == want || st == provp::v1::TuningJob::SUCCEEDED || st == provp::v1::TuningJob::FAILED ||
        st == provp::v1::TuningJob::CANCELLED) {
      return st;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void CancelJob(const std::shared_ptr<grpc::Channel>& channel, const std::string& id) {
  auto stub = provp::v1::TuningService::NewStub(channel);
  provp::v1::CancelTuningJobRequest req;
  req.set_name("tuningJobs/" + id);
  provp::v1::TuningJob job;
  auto ctx = Context(60);
  stub->CancelTuningJob(ctx.get(), req, &job);
  WaitJob(channel, id, provp::v1::TuningJob::CANCELLED);
}

// N loaded prompt sets: one short tuning job's prompts, imported N times.
absl::StatusOr<std::vector<std::string>> MakePromptSets(
    const std::shared_ptr<grpc::Channel>& channel, int n) {
  RETURN_IF_ERROR(StartJob(channel, "bench-source", 1));
  if (WaitJob(channel, "bench-source", provp::v1::TuningJob::SUCCEEDED) !=
      provp::v1::TuningJob::SUCCEEDED) {
    return absl::InternalError("the source tuning job did not succeed");
  }
  auto stub = provp::v1::PromptSetService::NewStub(channel);
  std::string file;
  {
    provp::v1::ExportPromptSetRequest req;
    req.set_name("promptSets/bench-source");
    auto ctx = Context(60);
    auto reader = stub->ExportPromptSet(ctx.get(), req);
    provp::v1::ExportPromptSetResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_chunk()) file += msg.chunk();
    }
    if (!reader->Finish().ok()) return absl::InternalError("export failed");
  }
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    const std::string id = absl::StrCat("bench-", i);
    auto ctx = Context(60);
    provp::v1::PromptSet ps;
    auto w = stub->ImportPromptSet(ctx.get(), &ps);
    provp::v1::ImportPromptSetRequest meta;
    meta.mutable_metadata()->set_prompt_set_id(id);
    w->Write(meta);
    for (size_t off = 0; off < file.size(); off += 1 << 20) {
      provp::v1::ImportPromptSetRequest chunk;
      chunk.set_chunk(file.substr(off, 1 << 20));
      w->Write(chunk);
    }
    w->WritesDone();
    grpc::Status s = w->Finish();
    if (!s.ok()) return absl::InternalError("import: " + s.error_message());
    provp::v1::LoadPromptSetRequest load;
    load.set_name("promptSets/" + id);
    auto lctx = Context(60);
    s = stub->LoadPromptSet(lctx.get(), load, &ps);
    if (!s.ok()) return absl::InternalError("load: " + s.error_message());
    names.push_back("promptSets/" + id);
  }
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, vocab, device = "cpu", target;
  int clients = 8, seconds = 10, threads = 0, max_batch = 32, prompt_sets = 0;
  std::vector<int> image_sizes = {224};
  bool tune_while_serving = false, tuning_yield = true;
  std::vector<int> batch_sizes = {1, 16};
  CLI::App app{"provp server load generator"};
  app.add_option("--model", model, "CLIP weights (empty = fake engine)");
  app.add_option("--vocab", vocab, "BPE vocabulary");
  app.add_option("--device", device, "cpu / cuda");
  app.add_option("--clients", clients, "concurrent clients")->capture_default_str();
  app.add_option("--seconds", seconds, "duration per setting")->capture_default_str();
  app.add_option("--image-size", image_sizes,
                 "square image sides in pixels; requests cycle through them (224 480 640)")
      ->check(CLI::Range(8, 4096));
  app.add_option("--images-per-request", batch_sizes, "one or more of 1, 16, ...");
  app.add_option("--torch-threads", threads, "LibTorch threads (0 = default)");
  app.add_option("--max-batch-size", max_batch, "server dynamic batch size")->capture_default_str();
  app.add_option("--prompt-sets", prompt_sets,
                 "spread requests over this many loaded prompt sets (0 = zero-shot)")
      ->check(CLI::Range(0, 10000));
  app.add_flag("--tune-while-serving", tune_while_serving,
               "run each setting again with a tuning job on the same device");
  app.add_option("--tuning-yield", tuning_yield,
                 "tuning steps wait for inference and take fewer CPU threads while serving")
      ->capture_default_str();
  app.add_option("--target", target,
                 "drive these running servers (gRPC target, round_robin) instead of an "
                 "in-process one");
  CLI11_PARSE(app, argc, argv);
  if (!target.empty()) {
    grpc::ChannelArguments args;
    args.SetLoadBalancingPolicyName("round_robin");
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    const std::vector<std::string> jpegs = Jpegs(image_sizes);
    for (int per_request : batch_sizes) {
      RunLoad(channel, jpegs, per_request, clients, seconds, /*inproc=*/0, {}, "zero-shot");
    }
    return 0;
  }

  auto engine = MakeEngine(model, vocab, device, threads, tuning_yield);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().ToString().c_str());
    return 1;
  }
  // In-process ceiling: EncodeImages at the server's batch size.
  std::vector<provp::engine::Image> imgs;
  const int image_size = image_sizes.front();
  for (int i = 0; i < max_batch; ++i) {
    const int side = image_sizes[static_cast<size_t>(i) % image_sizes.size()];
    imgs.push_back(TestImage(side, i));
  }
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
  std::printf("backbone: %s\nin-process encode (batch %d, %s px): %.1f images/s\n",
              (*engine)->info().description.c_str(), max_batch,
              absl::StrJoin(image_sizes, "/").c_str(), inproc);

  char tmpl[] = "/tmp/provp_bench_XXXXXX";
  provp::server::ServerOptions so;
  so.listen_address = "127.0.0.1:0";
  so.data_dir = mkdtemp(tmpl);
  so.batching.max_batch_size = max_batch;
  so.batching.max_queue_images = 4096;
  so.limits.max_images_per_request = 256;
  so.limits.max_prompt_sets = std::max(200, prompt_sets + 1);
  so.batching.max_queue_images = std::max(4096, clients * 256);
  auto server = provp::server::Server::Create(so, std::move(*engine));
  if (!server.ok() || !(*server)->Start().ok()) {
    std::fprintf(stderr, "server failed to start\n");
    return 1;
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                     grpc::InsecureChannelCredentials());
  const std::vector<std::string> jpegs = Jpegs(image_sizes);
  std::vector<std::string> sets;
  if (prompt_sets > 0 || tune_while_serving) {
    absl::Status up = UploadBenchDataset(channel, image_size);
    if (!up.ok()) {
      std::fprintf(stderr, "%s\n", up.ToString().c_str());
      return 1;
    }
  }
  if (prompt_sets > 0) {
    auto made = MakePromptSets(channel, prompt_sets);
    if (!made.ok()) {
      std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
      return 1;
    }
    sets = *std::move(made);
    std::printf("requests spread over %d loaded prompt sets\n", prompt_sets);
  }
  const char* label = prompt_sets > 0 ? "prompt-sets" : "zero-shot";
  int job = 0;
  for (int per_request : batch_sizes) {
    LoadResult idle = RunLoad(channel, jpegs, per_request, clients, seconds, inproc, sets, label);
    if (!tune_while_serving) continue;
    const std::string id = absl::StrCat("bench-tune-", job++);
    if (!StartJob(channel, id, 1000).ok() ||
        WaitJob(channel, id, provp::v1::TuningJob::RUNNING) != provp::v1::TuningJob::RUNNING) {
      std::fprintf(stderr, "the tuning job did not start\n");
      return 1;
    }
    LoadResult busy =
        RunLoad(channel, jpegs, per_request, clients, seconds, inproc, sets, "+tuning job");
    CancelJob(channel, id);
    std::printf("tuning while serving (yield %s): p99 %.2f ms idle, %.2f ms with the job: %.2fx\n",
                tuning_yield ? "on" : "off", 1000 * idle.p99, 1000 * busy.p99,
                idle.p99 > 0 ? busy.p99 / idle.p99 : 0.0);
  }
  (*server)->Shutdown();
  std::error_code ec;
  std::filesystem::remove_all(so.data_dir, ec);
  if (ec)
    std::fprintf(stderr, "could not remove %s: %s\n", so.data_dir.c_str(), ec.message().c_str());
  return 0;
}
