// Memory held per finished thread by image decoding (bench/soak, run by
// hand): decodes one image in each of N short-lived threads, as a server
// whose threads come and go does (gRPC's sync-server threads and the
// StreamClassify workers: ~600 new threads a minute in the soak), and prints
// the process's RSS every --every threads. Flat after the first few threads
// means nothing is kept per thread; a steady climb is a per-thread leak
// (OpenCV's parallel framework kept ~850 bytes a thread before the OpenCV
// codec ran it on the calling threads only: docs/benchmarks.md, soak).
//   provp_decode_thread_churn IMAGE [--threads 10000] [--every 2000]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "core/image/image_io.h"
#include "core/image/pixel_codec.h"

namespace {

long RssKib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IMAGE [--threads N] [--every N]\n", argv[0]);
    return 2;
  }
  int64_t threads = 10000, every = 2000;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    int64_t* target = flag == "--threads" ? &threads : flag == "--every" ? &every : nullptr;
    if (target == nullptr || !absl::SimpleAtoi(argv[i + 1], target) || *target <= 0) {
      std::fprintf(stderr, "%s: bad flag %s %s\n", argv[0], argv[i], argv[i + 1]);
      return 2;
    }
  }
  std::ifstream in(argv[1], std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!provp::image::DecodeImage(bytes).ok()) {
    std::fprintf(stderr, "%s: %s does not decode\n", argv[0], argv[1]);
    return 1;
  }
  std::printf("codec %s, %s (%zu bytes)\n", provp::image::DefaultPixelCodec().name, argv[1],
              bytes.size());
  bool all_ok = true;
  for (int64_t i = 1; i <= threads; ++i) {
    std::thread t([&] { all_ok = provp::image::DecodeImage(bytes).ok() && all_ok; });
    t.join();
    if (i == 1 || i % every == 0) std::printf("threads %lld rss_kib %ld\n", (long long)i, RssKib());
  }
  return all_ok ? 0 : 1;
}
