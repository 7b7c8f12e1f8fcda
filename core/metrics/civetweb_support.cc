// Implementation of civetweb_support.h.
#include "core/metrics/civetweb_support.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

constexpr size_t kMinimumStack = size_t{1} << 20;

}  // namespace

// In a process that also loads LibTorch and OpenBLAS, their thread-local
// storage (~100 KiB per thread) is carved out of civetweb's fixed 100 KiB
// worker stack, so glibc refuses to create the thread ("Cannot create first
// worker thread"). This definition interposes the libc function for the
// whole process and raises requests below 1 MiB to 1 MiB; larger requests
// pass unchanged.
extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t stack_size) {
  using SetStackSize = int (*)(pthread_attr_t*, size_t);
  static const SetStackSize real =
      reinterpret_cast<SetStackSize>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  if (real == nullptr) return 0;  // Keep the default stack (8 MiB) if lookup fails.
  return real(attr, stack_size < kMinimumStack ? kMinimumStack : stack_size);
}

namespace provp::metrics {

size_t RequireCivetwebWorkerStacks() { return kMinimumStack; }

void PokeListener(const std::string& bind_address, int port) {
  std::string target = bind_address;
  if (target == "0.0.0.0") target = "127.0.0.1";
  if (target == "::") target = "::1";
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, target.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, target.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return;  // not a literal: shutdown just takes the slow path
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  close(fd);
}

}  // namespace provp::metrics
