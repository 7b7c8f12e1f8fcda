// provp_clip_bench: image- and text-encoder throughput of the LibTorch CLIP
// for a checkpoint or a named size with random weights, over several batch
// sizes, optionally with ProVP prompts in every vision layer. Runs under
// InferenceMode with warmup; prints one table, or with --json one JSON line
// per measurement (bench/cpu/run.sh sets those beside the Python reference).
// Plain argv parsing so it builds in the torch-only (GPU host) configuration.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/clip/checkpoint_loader.h"
#include "core/clip/clip_model.h"
#include "core/util/blas_kernels.h"
#include "core/util/host_memory.h"
#include "core/util/torch_status.h"

namespace {

struct Args {
  std::string model;
  std::string size = "tiny";
  std::vector<int64_t> batches = {1, 8, 32};
  std::string device = "cpu";
  std::string dtype = "fp32";
  int64_t prompts = 0;
  double alpha = 0.01;
  int warmup = 2;
  int iters = 5;
  int threads = 0;
  bool image = true;
  bool text = true;
  bool json = false;
  int64_t mixed_sets = 0;  // > 0: also time batches whose images use this many prompt sets
};

void Usage() {
  std::fprintf(
      stderr,
      "usage: provp_clip_bench [--model PATH | --size tiny|vit-b16] [--batch 1,8,32]\n"
      "       [--device cpu|cuda[:N]] [--dtype fp32|bf16|fp16] [--prompts M] [--alpha A]\n"
      "       [--warmup N] [--iters N] [--threads N] [--image-only | --text-only] [--json]\n"
      "       [--mixed-sets N]   with --prompts: also a batch of N different prompt sets\n");
}

bool ParseInt(const char* s, int64_t* out) { return absl::SimpleAtoi(s, out); }

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    int64_t n = 0;
    if (k == "--json") {
      a->json = true;
    } else if (k == "--image-only") {
      a->text = false;
    } else if (k == "--text-only") {
      a->image = false;
    } else if (k == "-h" || k == "--help") {
      return false;
    } else if ((v = next()) == nullptr) {
      std::fprintf(stderr, "missing value for %s\n", k.c_str());
      return false;
    } else if (k == "--model") {
      a->model = v;
    } else if (k == "--size") {
      a->size = v;
    } else if (k == "--device") {
      a->device = v;
    } else if (k == "--dtype") {
      a->dtype = v;
    } else if (k == "--alpha") {
      if (!absl::SimpleAtod(v, &a->alpha)) return false;
    } else if (k == "--batch") {
      a->batches.clear();
      for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        if (!absl::SimpleAtoi(part, &n) || n < 1 || n > 4096) return false;
        a->batches.push_back(n);
      }
      if (a->batches.empty()) return false;
    } else if (k == "--prompts" && ParseInt(v, &n) && n >= 0 && n <= 1024) {
      a->prompts = n;
    } else if (k == "--mixed-sets" && ParseInt(v, &n) && n >= 1 && n <= 65536) {
      a->mixed_sets = n;
    } else if (k == "--warmup" && ParseInt(v, &n) && n >= 0 && n <= 1000) {
      a->warmup = static_cast<int>(n);
    } else if (k == "--iters" && ParseInt(v, &n) && n >= 1 && n <= 100000) {
      a->iters = static_cast<int>(n);
    } else if (k == "--threads" && ParseInt(v, &n) && n >= 1 && n <= 1024) {
      a->threads = static_cast<int>(n);
    } else {
      std::fprintf(stderr, "bad argument %s %s\n", k.c_str(), v);
      return false;
    }
  }
  return true;
}

void Sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

struct Timing {
  double best_s = 0;  // fastest call: the least disturbed by other load
  double mean_s = 0;
  double user_s = 0;  // process CPU time per call
  double sys_s = 0;
  long minor_faults = 0;  // per call
};

struct CpuUsage {
  double user_s, sys_s;
  long minor_faults;
};

CpuUsage ProcessUsage() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return {r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6,
          r.ru_stime.tv_sec + r.ru_stime.tv_usec * 1e-6, r.ru_minflt};
}

// Per-call timing of fn, after warmup.
template <typename Fn>
Timing Time(const torch::Device& device, int warmup, int iters, Fn&& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  Sync(device);
  Timing t;
  t.best_s = 1e30;
  const CpuUsage u0 = ProcessUsage();
  for (int i = 0; i < iters; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    Sync(device);
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
    t.best_s = std::min(t.best_s, d.count());
    t.mean_s += d.count() / iters;
  }
  const CpuUsage u1 = ProcessUsage();
  t.user_s = (u1.user_s - u0.user_s) / iters;
  t.sys_s = (u1.sys_s - u0.sys_s) / iters;
  t.minor_faults = (u1.minor_faults - u0.minor_faults) / iters;
  return t;
}

void PrintJson(const char* what, int64_t batch, const Args& a, const Timing& t) {
  std::printf(
      "{\"system\": \"provp\", \"what\": \"%s\", \"batch\": %lld, \"prompts\": %lld, "
      "\"dtype\": \"%s\", \"device\": \"%s\", \"threads\": %d, \"torch\": \"%s\", "
      "\"best_s\": %.6f, \"mean_s\": %.6f, \"user_s\": %.4f, \"sys_s\": %.4f, "
      "\"minor_faults\": %ld, \"images_per_s\": %.3f}\n",
      what, static_cast<long long>(batch), static_cast<long long>(a.prompts), a.dtype.c_str(),
      a.device.c_str(), at::get_num_threads(), TORCH_VERSION, t.best_s, t.mean_s, t.user_s, t.sys_s,
      t.minor_faults, batch / t.best_s);
}

}  // namespace

int main(int argc, char** argv) {
  // As the server does (bench/cpu/run.sh gives the reference the same).
  provp::util::ReexecWithBestBlasKernels(argv, "provp_clip_bench");
  using namespace provp::clip;
  // Line-buffered so a long run shows each row as it completes.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    Usage();
    return 2;
  }
  if (args.threads > 0) at::set_num_threads(args.threads);
  provp::util::KeepFreedHostMemory();  // as the engine does
  ModelOptions options;
  options.device = args.device;
  if (args.dtype == "fp32") {
    options.dtype = torch::kFloat32;
  } else if (args.dtype == "bf16") {
    options.dtype = torch::kBFloat16;
  } else if (args.dtype == "fp16") {
    options.dtype = torch::kFloat16;
  } else {
    std::fprintf(stderr, "unknown --dtype %s\n", args.dtype.c_str());
    return 2;
  }

  absl::StatusOr<ClipModel> model;
  std::string source;
  if (!args.model.empty()) {
    auto ck = LoadCheckpoint(args.model);
    if (!ck.ok()) {
      std::fprintf(stderr, "%s\n", ck.status().ToString().c_str());
      return 1;
    }
    model = BuildClipModel(*ck, options);
    source = args.model;
  } else if (args.size == "tiny" || args.size == "vit-b16") {
    model = BuildRandomClipModel(args.size == "tiny" ? TinyConfig() : ViTB16Config(), options, 0);
    source = args.size + " (random weights)";
  } else {
    std::fprintf(stderr, "unknown --size %s (tiny, vit-b16)\n", args.size.c_str());
    return 2;
  }
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }
  ClipModel m = *model;
  const ClipConfig& c = m->config();
  const torch::Device device(args.device);

  if (!args.json) {
    std::printf("model: %s\nconfig: %s\ndevice: %s  dtype: %s  torch %s  threads: %d\n",
                source.c_str(), c.DebugString().c_str(), args.device.c_str(), args.dtype.c_str(),
                TORCH_VERSION, at::get_num_threads());
    std::printf("prompts: %lld%s  warmup %d  iters %d\n\n", static_cast<long long>(args.prompts),
                args.prompts > 0 ? " per layer, all layers" : " (plain CLIP)", args.warmup,
                args.iters);
    std::printf("%-6s %6s %12s %14s\n", "tower", "batch", "ms/batch", "items/s");
  }

  VisualPrompts vp;
  if (args.prompts > 0) {
    vp.prompts = torch::rand({c.vision_layers, args.prompts, c.vision_width}) * 0.13 - 0.065;
    vp.alpha = args.alpha;
  }
  c10::InferenceMode inference;
  for (int64_t b : args.batches) {
    if (args.image) {
      auto images = provp::util::TorchCall("images", [&] {
        return torch::randn({b, 3, c.image_resolution, c.image_resolution}).to(device);
      });
      if (!images.ok()) {
        std::fprintf(stderr, "%s\n", images.status().ToString().c_str());
        return 1;
      }
      auto secs = provp::util::TorchCall("image", [&] {
        return Time(device, args.warmup, args.iters,
                    [&] { m->EncodeImage(*images, args.prompts > 0 ? &vp : nullptr); });
      });
      if (!secs.ok()) {
        std::fprintf(stderr, "image batch %lld: %s\n", static_cast<long long>(b),
                     secs.status().ToString().c_str());
        return 1;
      }
      if (args.json) {
        PrintJson(args.prompts > 0 ? "prompted_forward" : "image_forward", b, args, *secs);
      } else {
        std::printf("%-6s %6lld %12.2f %14.1f\n", "image", static_cast<long long>(b),
                    secs->best_s * 1e3, b / secs->best_s);
      }
      if (args.mixed_sets > 0 && args.prompts > 0) {
        // The batch's images use mixed_sets different prompt sets (image i
        // uses set i % N), gathered per layer inside the one forward.
        VisualPrompts mixed;
        mixed.prompts =
            (torch::rand({args.mixed_sets, c.vision_layers, args.prompts, c.vision_width}) * 0.13 -
             0.065)
                .to(device);
        mixed.image_set = (torch::arange(b, torch::kLong) % args.mixed_sets).to(device);
        mixed.alpha = args.alpha;
        auto msecs = provp::util::TorchCall("mixed", [&] {
          return Time(device, args.warmup, args.iters, [&] { m->EncodeImage(*images, &mixed); });
        });
        if (!msecs.ok()) {
          std::fprintf(stderr, "mixed batch %lld: %s\n", static_cast<long long>(b),
                       msecs.status().ToString().c_str());
          return 1;
        }
        if (args.json) {
          PrintJson("mixed_sets_forward", b, args, *msecs);
        } else {
          std::printf("%-6s %6lld %12.2f %14.1f   (%lld prompt sets, %.3f of one set's rate)\n",
                      "mixed", static_cast<long long>(b), msecs->best_s * 1e3, b / msecs->best_s,
                      static_cast<long long>(args.mixed_sets), secs->best_s / msecs->best_s);
        }
      }
    }
    if (args.text) {
      // Start token, 14 words, end token: a typical class prompt length.
      torch::Tensor tokens = torch::zeros({b, c.context_length}, torch::kLong);
      const int64_t len = std::min<int64_t>(16, c.context_length);
      tokens.narrow(1, 0, len).random_(1, std::min<int64_t>(c.vocab_size - 2, 40000));
      tokens.select(1, 0).fill_(std::min<int64_t>(49406, c.vocab_size - 2));
      tokens.select(1, len - 1).fill_(c.vocab_size - 1);
      tokens = tokens.to(device);
      auto secs = provp::util::TorchCall("text", [&] {
        return Time(device, args.warmup, args.iters, [&] { m->EncodeText(tokens); });
      });
      if (!secs.ok()) {
        std::fprintf(stderr, "text batch %lld: %s\n", static_cast<long long>(b),
                     secs.status().ToString().c_str());
        return 1;
      }
      if (args.json) {
        PrintJson("text_forward", b, args, *secs);
      } else {
        std::printf("%-6s %6lld %12.2f %14.1f\n", "text", static_cast<long long>(b),
                    secs->best_s * 1e3, b / secs->best_s);
      }
    }
  }
  return 0;
}
