// provp-builtin: makes the built-in small CLIP and the demo datasets, so a
// fresh machine with no downloads can run the whole ProVP-Ref flow.
//   provp-builtin prepare --data-dir DIR [--force] [--steps N] [--threads N]
// Writes DIR/model/{clip.safetensors,vocab.json,merges.txt,builtin.json} and
// DIR/datasets/{DemoShapes,DemoFashion}/; a second run reuses them.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/progress.h"
#include "core/builtin/prepare.h"
#include "core/util/blas_kernels.h"
#include "core/util/torch_threads.h"

namespace {

// "1h02m", "3m12s", "45s"; "?" before the first step.
std::string EtaText(double seconds) {
  if (seconds < 0) return "?";
  const long long s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

constexpr char kUsage[] =
    "usage: provp-builtin prepare --data-dir DIR [options]\n"
    "  Pretrains the built-in small CLIP on generated image-caption pairs and\n"
    "  writes the demo datasets (DemoShapes, DemoFashion) in the CoOp layout.\n"
    "  Cached: a second run with the same options reuses DIR's contents.\n"
    "options:\n"
    "  --data-dir DIR         output folder (required)\n"
    "  --force                rebuild even when cached outputs match\n"
    "  --steps N              pretraining steps (default 500)\n"
    "  --batch-size N         pretraining batch (default 64)\n"
    "  --seed N               pretraining and vocabulary seed (default 1)\n"
    "  --threads N            torch intra-op threads (default: one per logical CPU)\n"
    "  --learning-rate X      pretraining peak learning rate (default 1e-3)\n"
    "  --fashion-fraction X   share of Fashion-MNIST items in a batch (default 0.5)\n"
    "  --twin-fraction X      chance a scene gets a shape-only twin (default 0.5)\n"
    "  --width N              model width of both towers and the embedding (default 128)\n"
    "  --layers N             layers of both towers (default 3)\n"
    "  --patch N              vision patch size, dividing 32 (default 8)\n"
    "  --fashion-mnist DIR    Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)\n"
    "  --quiet                no progress lines\n";

bool ParseInt(const std::string& flag, const char* value, int64_t lo, int64_t hi, int64_t* out) {
  if (value == nullptr || !absl::SimpleAtoi(value, out) || *out < lo || *out > hi) {
    std::fprintf(stderr, "provp-builtin: %s needs an integer in [%lld, %lld]\n", flag.c_str(),
                 static_cast<long long>(lo), static_cast<long long>(hi));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenBLAS' SSE3 fallback on CPUs newer than Debian's OpenBLAS made
  // pretraining 2.7x slower on the AVX-512 Xeon it was measured on.
  provp::util::ReexecWithBestBlasKernels(argv, "provp-builtin");
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) != "prepare") {
    std::fprintf(stderr, "provp-builtin: unknown command \"%s\"\n%s", argv[1], kUsage);
    return 2;
  }
  provp::builtin::PrepareOptions options;
  bool quiet = false;
  int threads = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    int64_t n = 0;
    if (flag == "--data-dir" && value) {
      options.data_dir = value;
      ++i;
    } else if (flag == "--fashion-mnist" && value) {
      options.fashion_mnist_dir = value;
      ++i;
    } else if (flag == "--force") {
      options.force = true;
    } else if (flag == "--quiet") {
      quiet = true;
    } else if (flag == "--steps") {
      if (!ParseInt(flag, value, 1, 1000000, &n)) return 2;
      options.pretrain.steps = n;
      ++i;
    } else if (flag == "--batch-size") {
      if (!ParseInt(flag, value, 2, 4096, &n)) return 2;
      options.pretrain.batch_size = n;
      ++i;
    } else if (flag == "--seed") {
      if (!ParseInt(flag, value, 0, int64_t{1} << 62, &n)) return 2;
      options.pretrain.seed = static_cast<uint64_t>(n);
      ++i;
    } else if (flag == "--fashion-fraction" || flag == "--twin-fraction") {
      double x = -1;
      if (value == nullptr || !absl::SimpleAtod(value, &x) || !(x >= 0 && x <= 1)) {
        std::fprintf(stderr, "provp-builtin: %s needs a number in [0, 1]\n", flag.c_str());
        return 2;
      }
      (flag == "--fashion-fraction" ? options.pretrain.fashion_fraction
                                    : options.pretrain.shape_twin_fraction) = x;
      ++i;
    } else if (flag == "--threads") {
      if (!ParseInt(flag, value, 1, 1024, &n)) return 2;
      threads = static_cast<int>(n);
      ++i;
    } else if (flag == "--learning-rate") {
      double lr = 0;
      if (value == nullptr || !absl::SimpleAtod(value, &lr) || !(lr > 0 && lr < 1)) {
        std::fprintf(stderr, "provp-builtin: --learning-rate needs a number in (0, 1)\n");
        return 2;
      }
      options.pretrain.learning_rate = lr;
      ++i;
    } else if (flag == "--width") {
      if (!ParseInt(flag, value, 64, 1024, &n) || n % 64 != 0) {
        std::fprintf(stderr, "provp-builtin: --width must be a multiple of 64\n");
        return 2;
      }
      auto& a = options.architecture;
      a.embed_dim = a.vision_width = a.text_width = n;
      a.vision_heads = a.text_heads = n / 64;
      ++i;
    } else if (flag == "--layers") {
      if (!ParseInt(flag, value, 1, 24, &n)) return 2;
      options.architecture.vision_layers = options.architecture.text_layers = n;
      ++i;
    } else if (flag == "--patch") {
      if (!ParseInt(flag, value, 1, 32, &n) || 32 % n != 0) {
        std::fprintf(stderr, "provp-builtin: --patch must divide 32\n");
        return 2;
      }
      options.architecture.vision_patch_size = n;
      ++i;
    } else if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "provp-builtin: unknown or incomplete option \"%s\"\n%s", flag.c_str(),
                   kUsage);
      return 2;
    }
  }
  if (options.data_dir.empty()) {
    std::fprintf(stderr, "provp-builtin: --data-dir is required\n%s", kUsage);
    return 2;
  }
  const int used_threads = provp::util::SetTorchThreads(threads);
  // Pretraining, the longest step, gets the CLI's progress bar with an ETA
  // (redrawn in place on a terminal, a line per 10 % in logs).
  provp::client::ProgressBar bar;
  const absl::Time pretrain_start = absl::Now();
  if (!quiet) {
    options.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    options.log(absl::StrFormat("torch threads: %d", used_threads));
    options.pretrain.log_every = std::max<int64_t>(1, options.pretrain.steps / 200);
    options.pretrain.on_progress = [&bar, pretrain_start, total = options.pretrain.steps](
                                       int64_t step, double loss, double acc, double) {
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - pretrain_start);
      bar.Update(
          static_cast<double>(step) / static_cast<double>(total),
          absl::StrFormat("pretrain step %d/%d loss %.3f batch-acc %.2f ETA %s", step, total, loss,
                          acc, EtaText(step > 0 ? elapsed / step * (total - step) : -1)));
      if (step >= total) bar.Finish();
    };
  }
  auto result = provp::builtin::PrepareBuiltin(options);
  if (!result.ok()) {
    std::fprintf(stderr, "provp-builtin: %s\n", result.status().ToString().c_str());
    return 1;
  }
  std::printf("model: %s (%s, vocabulary %lld tokens, pretraining %.1f s)\n",
              result->weights_path.c_str(), result->model_reused ? "cached" : "new",
              static_cast<long long>(result->vocab_size), result->pretrain_seconds);
  for (const auto& [name, dir] : result->dataset_dirs) {
    const auto acc = result->zero_shot_accuracy.find(name);
    std::printf("dataset %s: %s (%s), zero-shot test accuracy %.1f%%\n", name.c_str(), dir.c_str(),
                result->datasets_reused ? "cached" : "new",
                acc == result->zero_shot_accuracy.end() ? 0.0 : 100 * acc->second);
  }
  return 0;
}
