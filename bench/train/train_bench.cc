// Benchmark of one ProVP-Ref training step (augment -> prompted forward ->
// frozen forward -> losses -> backward to the prompts -> SGD step) on a
// random-weight CLIP: ms/step, images/s and peak memory (CUDA caching
// allocator stats, or the process's max RSS on CPU). Run by hand:
//   provp_train_bench --size tiny --device cpu
//   provp_train_bench --size vit-b16 --prompts 50 --device cuda --dtype bf16
// --json prints one JSON line (bench/cpu/run.sh sets it beside the Python
// reference). Single-threaded driver; plain argv parsing so it builds
// torch-only.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <torch/version.h>

// CMake defines this when LibTorch comes with c10_cuda (the CPU-only
// Debian package ships the CUDA headers but not the library).
#ifdef PROVP_BENCH_HAS_CUDA_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif
#include <torch/cuda.h>

#include "core/clip/clip_model.h"
#include "core/clip/config.h"
#include "core/image/preprocess.h"
#include "core/provp/provp_model.h"
#include "core/util/blas_kernels.h"
#include "core/util/host_memory.h"

namespace {

struct Args {
  std::string size = "tiny";
  std::string device = "cpu";
  std::string dtype = "fp32";
  int64_t prompts = 50;
  int64_t batch = 32;
  int64_t steps = 20;
  int64_t warmup = 3;
  int64_t classes = 100;
  int64_t source_px = 0;  // stored image side; 0 = resolution * 8 / 7
  bool ref = true;
  bool augment = true;
  int threads = 0;
  bool json = false;
};

void Usage() {
  std::fprintf(
      stderr,
      "usage: provp_train_bench [--size tiny|vit-b16] [--device cpu|cuda|cuda:N]\n"
      "  [--dtype fp32|bf16|fp16] [--prompts M] [--batch B] [--steps N] [--warmup N]\n"
      "  [--classes C] [--no-ref] [--no-augment] [--source-px P] [--threads T] [--json]\n");
}

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    auto num = [&](const char* name, int64_t* out) {
      const char* v = next(name);
      if (!v) return false;
      char* end = nullptr;
      *out = std::strtoll(v, &end, 10);
      if (*end != '\0' || *out < 0) {
        std::fprintf(stderr, "%s: bad number '%s'\n", name, v);
        return false;
      }
      return true;
    };
    int64_t t = 0;
    if (k == "--size") {
      const char* v = next("--size");
      if (!v) return false;
      a->size = v;
    } else if (k == "--device") {
      const char* v = next("--device");
      if (!v) return false;
      a->device = v;
    } else if (k == "--dtype") {
      const char* v = next("--dtype");
      if (!v) return false;
      a->dtype = v;
    } else if (k == "--prompts") {
      if (!num("--prompts", &a->prompts)) return false;
    } else if (k == "--batch") {
      if (!num("--batch", &a->batch)) return false;
    } else if (k == "--steps") {
      if (!num("--steps", &a->steps)) return false;
    } else if (k == "--warmup") {
      if (!num("--warmup", &a->warmup)) return false;
    } else if (k == "--classes") {
      if (!num("--classes", &a->classes)) return false;
    } else if (k == "--source-px") {
      if (!num("--source-px", &a->source_px)) return false;
    } else if (k == "--threads") {
      if (!num("--threads", &t)) return false;
      a->threads = static_cast<int>(t);
    } else if (k == "--no-ref") {
      a->ref = false;
    } else if (k == "--no-augment") {
      a->augment = false;
    } else if (k == "--json") {
      a->json = true;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", k.c_str());
      return false;
    }
  }
  if (a->batch < 1 || a->steps < 1 || a->prompts < 1 || a->classes < 1) {
    std::fprintf(stderr, "batch, steps, prompts and classes must be >= 1\n");
    return false;
  }
  return true;
}

double MaxRssMiB() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  // As the server does (bench/cpu/run.sh gives the reference the same).
  provp::util::ReexecWithBestBlasKernels(argv, "provp_train_bench");
  Args args;
  if (!Parse(argc, argv, &args)) {
    Usage();
    return 2;
  }
  if (args.threads > 0) torch::set_num_threads(args.threads);
  provp::util::KeepFreedHostMemory();  // as the engine does
  provp::clip::ClipConfig config;
  if (args.size == "tiny") {
    config = provp::clip::TinyConfig();
  } else if (args.size == "vit-b16") {
    config = provp::clip::ViTB16Config();
  } else {
    std::fprintf(stderr, "unknown --size %s\n", args.size.c_str());
    return 2;
  }
  provp::clip::ModelOptions mo;
  mo.device = args.device;
  if (args.dtype == "fp32") {
    mo.dtype = torch::kFloat32;
  } else if (args.dtype == "bf16") {
    mo.dtype = torch::kBFloat16;
  } else if (args.dtype == "fp16") {
    mo.dtype = torch::kFloat16;
  } else {
    std::fprintf(stderr, "unknown --dtype %s\n", args.dtype.c_str());
    return 2;
  }
  auto clip = provp::clip::BuildRandomClipModel(config, mo, 1);
  if (!clip.ok()) {
    std::fprintf(stderr, "model: %s\n", clip.status().ToString().c_str());
    return 1;
  }
  provp::provp::ProvpOptions po = provp::provp::DefaultOptionsFor(
      args.ref ? provp::provp::Variant::kProvpRef : provp::provp::Variant::kProvp);
  po.num_prompts = args.prompts;
  auto model = provp::provp::ProvpModel::Create(*clip, po, 1);
  if (!model.ok()) {
    std::fprintf(stderr, "prompts: %s\n", model.status().ToString().c_str());
    return 1;
  }
  const torch::Device device = (*model)->device();
  const bool cuda = device.is_cuda();
  const int64_t res = config.image_resolution;
  const int64_t src = args.source_px > 0 ? args.source_px : res * 8 / 7;

  // Decoded-once training images living on the device, as the trainer keeps them.
  torch::manual_seed(0);
  std::vector<torch::Tensor> images;
  for (int64_t i = 0; i < args.batch; ++i) {
    images.push_back(torch::randint(0, 256, {src, src, 3}, torch::kUInt8).to(device));
  }
  torch::Tensor fixed_batch = torch::randn({args.batch, 3, res, res}).to(device);
  torch::Tensor labels = torch::randint(0, args.classes, {args.batch}, torch::kInt64).to(device);
  torch::Tensor text = torch::randn({args.classes, config.embed_dim}).to(device);
  text = text / text.norm(2, {-1}, true);
  torch::Tensor param = (*model)->trainable_parameters().front();
  torch::optim::SGD opt({param}, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
  provp::image::AugmentOptions aug;
  aug.size = res;
  std::mt19937_64 rng(1);

  auto step = [&]() -> bool {
    torch::Tensor x = fixed_batch;
    if (args.augment) {
      auto a = provp::image::AugmentBatch(images, aug, rng, device);
      if (!a.ok()) {
        std::fprintf(stderr, "augment: %s\n", a.status().ToString().c_str());
        return false;
      }
      x = *a;
    }
    auto terms = (*model)->Loss(x, labels, text);
    if (!terms.ok()) {
      std::fprintf(stderr, "loss: %s\n", terms.status().ToString().c_str());
      return false;
    }
    opt.zero_grad();
    terms->total.backward();
    opt.step();
    return true;
  };
  auto sync = [&]() {
    if (cuda) torch::cuda::synchronize();
  };

  try {
    for (int64_t i = 0; i < args.warmup; ++i) {
      if (!step()) return 1;
    }
    sync();
#ifdef PROVP_BENCH_HAS_CUDA_STATS
    if (cuda)
      c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#endif
    struct rusage ru0, ru1;
    ::getrusage(RUSAGE_SELF, &ru0);
    const auto t0 = std::chrono::steady_clock::now();
    double best_s = 1e30;
    for (int64_t i = 0; i < args.steps; ++i) {
      const auto s0 = std::chrono::steady_clock::now();
      if (!step()) return 1;
      sync();
      best_s = std::min(
          best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
    }
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ::getrusage(RUSAGE_SELF, &ru1);
    const double ms = 1000.0 * sec / args.steps;
    if (args.json) {
      auto secs = [](const timeval& a, const timeval& b) {
        return (b.tv_sec - a.tv_sec) + (b.tv_usec - a.tv_usec) * 1e-6;
      };
      std::printf(
          "{\"system\": \"provp\", \"what\": \"%s\", \"batch\": %lld, \"prompts\": %lld, "
          "\"dtype\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"torch\": \"%s\", "
          "\"augment\": %s, \"best_s\": %.6f, \"mean_s\": %.6f, \"user_s\": %.4f, "
          "\"sys_s\": %.4f, \"minor_faults\": %ld, \"images_per_s\": %.3f, "
          "\"peak_rss_mib\": %.1f}\n",
          args.ref ? "train_step_ref" : "train_step", static_cast<long long>(args.batch),
          static_cast<long long>(args.prompts), args.dtype.c_str(), args.device.c_str(),
          torch::get_num_threads(), TORCH_VERSION, args.augment ? "true" : "false", best_s,
          sec / args.steps, secs(ru0.ru_utime, ru1.ru_utime) / args.steps,
          secs(ru0.ru_stime, ru1.ru_stime) / args.steps,
          (ru1.ru_minflt - ru0.ru_minflt) / static_cast<long>(args.steps), args.batch / best_s,
          MaxRssMiB());
      return 0;
    }
    std::printf(
        "provp_train_bench libtorch=%s size=%s device=%s dtype=%s prompts=%lld batch=%lld ref=%d "
        "augment=%d threads=%d\n",
        TORCH_VERSION, args.size.c_str(), args.device.c_str(), args.dtype.c_str(),
        static_cast<long long>(args.prompts), static_cast<long long>(args.batch), args.ref ? 1 : 0,
        args.augment ? 1 : 0, torch::get_num_threads());
    std::printf("  step: %.3f ms   images/s: %.1f   steps: %lld\n", ms,
                args.batch / (sec / args.steps), static_cast<long long>(args.steps));
#ifdef PROVP_BENCH_HAS_CUDA_STATS
    if (cuda) {
      const auto stats =
          c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
      std::printf("  peak GPU memory: allocated %.1f MiB, reserved %.1f MiB\n",
                  stats.allocated_bytes[0].peak / 1048576.0,
                  stats.reserved_bytes[0].peak / 1048576.0);
    }
#endif
    std::printf("  peak host RSS: %.1f MiB\n", MaxRssMiB());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
