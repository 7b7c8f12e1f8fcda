// Everything the server is configured by. main.cc fills it from flags and
// PROVP_* environment variables; tests fill it directly. Plain value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/state/limits.h"

namespace provp::server {

struct ServerOptions {
  // gRPC listen address ("0.0.0.0:50051"; port 0 picks one).
  std::string listen_address = "0.0.0.0:50051";
  // When set, the bound port is written here (atomically) once serving.
  std::string port_file;
  // Metrics/health HTTP port (-1 = off, 0 = pick one).
  int metrics_port = -1;
  std::string metrics_bind_address = "0.0.0.0";
  // When set (and metrics are on), the bound metrics port is written here
  // (atomically) as soon as it is bound, like port_file.
  std::string metrics_port_file;
  // The HTTP/JSON door for the data plane (server/http_gateway.h): its own
  // port (-1 = off, 0 = pick one), bind address and port file (written
  // atomically once bound), civetweb worker threads (requests at once), the
  // deadline of each forwarded call, and a CORS origin ("" = no CORS
  // headers). Off by default: a new listener is something an operator opts
  // into; the shipped deployment files turn it on (8080).
  int http_port = -1;
  std::string http_bind_address = "0.0.0.0";
  std::string http_port_file;
  int http_threads = 16;
  double http_timeout_seconds = 60;
  std::string http_allow_origin;
  // State: SQLite database, datasets, prompt sets, checkpoints.
  std::string data_dir = "./provp-data";
  // Where records live (store::OpenStore): "" = SQLite in data_dir,
  // "postgresql://..." = a PostgreSQL shared by replicas (file_store must
  // then be a folder they all mount).
  std::string store;
  // The file store (store::OpenSharedDirFileStore): dataset images,
  // prompt-set files and checkpoints by content key. "" = data_dir/blobs.
  // data_dir itself then holds only per-replica scratch (job working files,
  // import staging) and, without a shared store, the SQLite database.
  std::string file_store;
  // With a shared store: a file no record refers to is removed only once it
  // was last stored this long ago (another replica may be about to record
  // it), so it must exceed the longest upload. Alone (SQLite) removal is
  // immediate. Unused files are swept at start and, shared, every hour.
  double file_store_grace_seconds = 86400;
  // What this replica does: "all" (one process does everything), "inference"
  // (serves every RPC but never runs tuning jobs: they wait in the shared
  // queue for a tuning replica) or "tuning" (runs jobs; prompt sets load
  // only when a request needs one).
  std::string role = "all";
  // A claimed job stays this replica's for this long without renewal
  // (renewed every third of it); after a crash another replica resumes it
  // this long after the last renewal.
  double job_lease_seconds = 15.0;
  // With a shared store: how old a replica's view of a loaded prompt set may
  // be before the next use checks the store (delete / re-import elsewhere).
  double prompt_set_refresh_seconds = 2.0;
  // Server-side folders RegisterDataset may read from (empty = none).
  std::vector<std::string> dataset_roots;
  // API key file ("" = authentication off, logged as a warning). Without
  // one, Create refuses a listen address that is not loopback unless
  // allow_unauthenticated says the open server is meant.
  std::string api_keys_file;
  bool allow_unauthenticated = false;
  // TLS: server certificate chain and key (PEM). Both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  // mTLS: CA bundle to verify client certificates; requires a client cert.
  std::string tls_client_ca_file;
  // Logging.
  bool log_json = false;
  // Text-feature cache size.
  int64_t text_cache_bytes = int64_t{256} << 20;
  // Load every prompt set a job produces.
  bool auto_load_prompt_sets = true;
  // Grace period for in-flight RPCs on SIGTERM (seconds).
  double shutdown_grace_seconds = 30.0;
  // Seconds between heartbeat events on idle Watch streams.
  double watch_heartbeat_seconds = 15.0;
  // gRPC sync server threads (max concurrent RPCs being handled).
  int max_rpc_threads = 64;
  // Threads that decode and resize request images beside the RPC thread of
  // each request (which works on its own images too; 0: only it), so the
  // batch worker gets ready crops and a large request's images are
  // prepared in parallel.
  int preprocess_threads = 4;
  // HTTP/2 keepalive: ping an idle connection every keepalive_time_seconds
  // and drop it when no answer comes within keepalive_timeout_seconds.
  double keepalive_time_seconds = 60;
  double keepalive_timeout_seconds = 20;
  // Connection lifetime (0 = unlimited): after max_connection_age_seconds
  // (gRPC adds +-10 % jitter) the server sends GOAWAY, lets calls in flight
  // finish for max_connection_age_grace_seconds, then closes, so clients
  // reconnect and load balancers can spread long-lived HTTP/2 connections.
  // max_connection_idle_seconds closes connections without calls.
  double max_connection_age_seconds = 0;
  double max_connection_age_grace_seconds = 30;
  double max_connection_idle_seconds = 0;
  // Liveness (/healthz): the server counts as stuck, and so not alive, when
  // queued inference work has not advanced for this long (0 = never).
  double liveness_stall_seconds = 120;
  // Every this many seconds, whole free pages the allocator keeps are handed
  // back to the kernel (malloc_trim; 0 = never): the engine keeps freed
  // memory between forwards, and without a trim what a burst or a tuning
  // job freed is never returned.
  double host_memory_trim_seconds = 30;
  Limits limits;
  BatchingOptions batching;
};

}  // namespace provp::server
