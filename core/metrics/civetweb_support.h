// What every civetweb server in this process needs, shared by the metrics
// exposer (core/metrics/exposer.h) and the HTTP/JSON door
// (server/http_gateway.h):
//  - the worker-stack fix: Debian's libcivetweb.so.1 creates its worker
//    threads with a hard-coded 100 KiB stack, too small once LibTorch and
//    OpenBLAS carve their thread-local storage out of it (BUILD-NOTES.md).
//    civetweb_support.cc interposes pthread_attr_setstacksize for the whole
//    process; calling RequireCivetwebWorkerStacks() before starting a
//    civetweb server is what links that object file into the binary.
//  - PokeListener, which makes shutdown prompt (see below).
// Thread-safe.
#pragma once

#include <string>

namespace provp::metrics {

// The smallest worker stack civetweb threads get (1 MiB); returns it. A
// call keeps the interposer linked; it has no other effect.
size_t RequireCivetwebWorkerStacks();

// Opens and closes one TCP connection to bind_address:port (0.0.0.0 and ::
// become their loopback). civetweb's accept loop only notices mg_stop() when
// poll() returns, which otherwise takes up to its 1 s quantum per listener;
// a connection wakes it at once. Does nothing for a non-literal address.
void PokeListener(const std::string& bind_address, int port);

}  // namespace provp::metrics
