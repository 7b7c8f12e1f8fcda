// provp-server: flags and PROVP_* environment variables -> ServerOptions,
// the LibTorch CLIP engine (the only engine this binary serves with; the
// test fake is not linked), then serve until SIGTERM/SIGINT, which drains
// gracefully and exits 0.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "absl/strings/str_split.h"
#include "core/engine/torch_engine.h"
#include "core/util/blas_kernels.h"
#include "core/util/host_memory.h"
#include "server/server.h"

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "provp-server: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenBLAS' generic fallback kernels on a CPU newer than it knows run the
  // CPU forward ~1.45x slower; restarts once with the CPU's own (the config
  // summary's blas= line says so). Before anything else.
  provp::util::ReexecWithBestBlasKernels(argv, nullptr);
  // Before any thread starts (util/host_memory.h): a quarter of the cores,
  // at least two.
  provp::util::CapMallocArenas(
      std::max(2, static_cast<int>(std::thread::hardware_concurrency()) / 4));
  using provp::server::ServerOptions;
  ServerOptions o;
  std::string model_path, vocab_path, device = "cpu", dataset_roots, log_format = "text";
  int torch_threads = 0;
  int64_t prompt_set_budget_mib = 0;
  int tuning_yield_max_ms = 200;
  int tuning_threads_when_serving = 1;

  CLI::App app{"provp-server: ProVP-Ref prompt tuning and CLIP classification over gRPC"};
  app.add_option("--listen", o.listen_address, "gRPC address (host:port; port 0 = any)")
      ->envname("PROVP_LISTEN")
      ->capture_default_str();
  app.add_option("--port-file", o.port_file, "write the bound gRPC port here once serving")
      ->envname("PROVP_PORT_FILE");
  app.add_option("--metrics-port-file", o.metrics_port_file,
                 "write the bound /metrics port here once it is bound (with --metrics-port >= 0)")
      ->envname("PROVP_METRICS_PORT_FILE");
  app.add_option("--metrics-port", o.metrics_port, "HTTP /metrics port (-1 off, 0 any)")
      ->envname("PROVP_METRICS_PORT")
      ->capture_default_str();
  app.add_option("--metrics-bind", o.metrics_bind_address, "HTTP bind address")
      ->envname("PROVP_METRICS_BIND")
      ->capture_default_str();
  app.add_option("--http-port", o.http_port,
                 "HTTP/JSON door for the data plane: POST /v1/classify, /v1/embed-images, "
                 "/v1/embed-texts, GET /v1/server-info, /v1/health (-1 off, 0 any)")
      ->envname("PROVP_HTTP_PORT")
      ->capture_default_str();
  app.add_option("--http-bind", o.http_bind_address, "HTTP/JSON door bind address")
      ->envname("PROVP_HTTP_BIND")
      ->capture_default_str();
  app.add_option("--http-port-file", o.http_port_file,
                 "write the bound HTTP/JSON port here once it is bound (with --http-port >= 0)")
      ->envname("PROVP_HTTP_PORT_FILE");
  app.add_option("--http-threads", o.http_threads, "HTTP/JSON requests handled at once")
      ->envname("PROVP_HTTP_THREADS")
      ->capture_default_str();
  app.add_option("--http-timeout-seconds", o.http_timeout_seconds,
                 "deadline of each call made through the HTTP/JSON door")
      ->envname("PROVP_HTTP_TIMEOUT_SECONDS")
      ->capture_default_str();
  app.add_option("--http-allow-origin", o.http_allow_origin,
                 "CORS: let pages of this origin ('*' or https://host) call the HTTP/JSON door")
      ->envname("PROVP_HTTP_ALLOW_ORIGIN");
  app.add_option("--data-dir", o.data_dir, "state directory (SQLite, datasets, prompt sets)")
      ->envname("PROVP_DATA_DIR")
      ->capture_default_str();
  app.add_option("--store", o.store,
                 "state store: postgresql://user[:password]@host:port/db shared by replicas, "
                 "or sqlite:PATH; default SQLite in --data-dir")
      ->envname("PROVP_STORE");
  app.add_option("--file-store", o.file_store,
                 "folder holding dataset images, prompt-set files and checkpoints by content hash; "
                 "replicas share it (a ReadWriteMany volume); default --data-dir/blobs")
      ->envname("PROVP_FILE_STORE");
  app.add_option("--file-store-grace-seconds", o.file_store_grace_seconds,
                 "with a shared store, an unused file is removed only once it is this old (longer "
                 "than any upload takes)")
      ->envname("PROVP_FILE_STORE_GRACE_SECONDS")
      ->capture_default_str();
  app.add_option("--role", o.role,
                 "all, inference (never runs tuning jobs) or tuning (runs jobs; prompt sets load "
                 "on demand); inference/tuning need a shared --store")
      ->envname("PROVP_ROLE")
      ->check(CLI::IsMember({"all", "inference", "tuning"}))
      ->capture_default_str();
  app.add_option("--job-lease-seconds", o.job_lease_seconds,
                 "a dead replica's running job is resumed elsewhere this long after its last "
                 "lease renewal")
      ->envname("PROVP_JOB_LEASE_SECONDS")
      ->capture_default_str();
  app.add_option("--prompt-set-refresh-seconds", o.prompt_set_refresh_seconds,
                 "with a shared store, how stale a loaded prompt set may be before its next use "
                 "rechecks the store")
      ->envname("PROVP_PROMPT_SET_REFRESH_SECONDS")
      ->capture_default_str();
  app.add_option("--dataset-roots", dataset_roots,
                 "colon-separated folders RegisterDataset may read")
      ->envname("PROVP_DATASET_ROOTS");
  app.add_option("--model", model_path, "CLIP weights (safetensors, .pt, TorchScript, HF dir)")
      ->envname("PROVP_MODEL");
  app.add_option("--vocab", vocab_path,
                 "BPE vocabulary (.txt.gz or HF dir); default: next to the model")
      ->envname("PROVP_VOCAB");
  app.add_option("--device", device, "cpu, cuda, cuda:N")
      ->envname("PROVP_DEVICE")
      ->capture_default_str();
  app.add_option("--torch-threads", torch_threads,
                 "LibTorch intra-op threads (0 = one per logical CPU)")
      ->envname("PROVP_TORCH_THREADS");
  app.add_option("--api-keys", o.api_keys_file, "API key file ('<admin|classify> <key> [name]')")
      ->envname("PROVP_API_KEYS");
  app.add_flag("--allow-unauthenticated", o.allow_unauthenticated,
               "serve without --api-keys on a non-loopback address (every caller is admin)")
      ->envname("PROVP_ALLOW_UNAUTHENTICATED");
  app.add_option("--tls-cert", o.tls_cert_file, "server certificate chain (PEM)")
      ->envname("PROVP_TLS_CERT");
  app.add_option("--tls-key", o.tls_key_file, "server private key (PEM)")->envname("PROVP_TLS_KEY");
  app.add_option("--tls-client-ca", o.tls_client_ca_file, "CA for client certificates (mTLS)")
      ->envname("PROVP_TLS_CLIENT_CA");
  app.add_option("--log-format", log_format, "text or json")
      ->envname("PROVP_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  auto& l = o.limits;
  app.add_option("--max-message-bytes", l.max_message_bytes)
      ->envname("PROVP_MAX_MESSAGE_BYTES")
      ->capture_default_str();
  app.add_option("--max-images-per-request", l.max_images_per_request)
      ->envname("PROVP_MAX_IMAGES_PER_REQUEST")
      ->capture_default_str();
  app.add_option("--max-pixels-per-image", l.max_pixels_per_image)
      ->envname("PROVP_MAX_PIXELS_PER_IMAGE")
      ->capture_default_str();
  app.add_option("--max-classes-per-request", l.max_classes_per_request)
      ->envname("PROVP_MAX_CLASSES_PER_REQUEST")
      ->capture_default_str();
  app.add_option("--max-name-length", l.max_name_length)
      ->envname("PROVP_MAX_NAME_LENGTH")
      ->capture_default_str();
  app.add_option("--max-datasets", l.max_datasets)
      ->envname("PROVP_MAX_DATASETS")
      ->capture_default_str();
  app.add_option("--max-jobs", l.max_jobs)->envname("PROVP_MAX_JOBS")->capture_default_str();
  app.add_option("--max-queued-jobs", l.max_queued_jobs)
      ->envname("PROVP_MAX_QUEUED_JOBS")
      ->capture_default_str();
  app.add_option("--stream-max-in-flight", l.stream_max_in_flight,
                 "StreamClassify messages of one stream answered at once")
      ->envname("PROVP_STREAM_MAX_IN_FLIGHT")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-upload-bytes", l.max_upload_bytes)
      ->envname("PROVP_MAX_UPLOAD_BYTES")
      ->capture_default_str();
  app.add_option("--max-batch-size", o.batching.max_batch_size)
      ->envname("PROVP_MAX_BATCH_SIZE")
      ->capture_default_str();
  app.add_option("--max-queue-delay-us", o.batching.max_queue_delay_us)
      ->envname("PROVP_MAX_QUEUE_DELAY_US")
      ->capture_default_str();
  app.add_option("--max-queue-images", o.batching.max_queue_images)
      ->envname("PROVP_MAX_QUEUE_IMAGES")
      ->capture_default_str();
  app.add_option("--batch-workers", o.batching.num_workers)
      ->envname("PROVP_BATCH_WORKERS")
      ->capture_default_str();
  app.add_option("--mix-prompt-sets", o.batching.mix_prompt_sets,
                 "One model execution takes requests of different prompt sets (and zero-shot)")
      ->envname("PROVP_MIX_PROMPT_SETS")
      ->capture_default_str();
  app.add_option("--tuning-yield-max-ms", tuning_yield_max_ms,
                 "A tuning step waits up to this long for a running image encode (inference "
                 "first)")
      ->envname("PROVP_TUNING_YIELD_MAX_MS")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_option("--tuning-threads-when-serving", tuning_threads_when_serving,
                 "CPU: LibTorch threads of a tuning job while inference traffic is about (0: "
                 "no change)")
      ->envname("PROVP_TUNING_THREADS_WHEN_SERVING")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--prompt-set-budget-mib", prompt_set_budget_mib,
                 "Device memory for loaded prompt sets' tensors; beyond it the least recently "
                 "used are evicted and read back from their files on next use (0: no limit)")
      ->envname("PROVP_PROMPT_SET_BUDGET_MIB")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--text-cache-bytes", o.text_cache_bytes)
      ->envname("PROVP_TEXT_CACHE_BYTES")
      ->capture_default_str();
  app.add_option("--shutdown-grace-seconds", o.shutdown_grace_seconds)
      ->envname("PROVP_SHUTDOWN_GRACE_SECONDS")
      ->capture_default_str();
  app.add_option("--watch-heartbeat-seconds", o.watch_heartbeat_seconds)
      ->envname("PROVP_WATCH_HEARTBEAT_SECONDS")
      ->capture_default_str();
  app.add_option("--preprocess-threads", o.preprocess_threads,
                 "Threads decoding and resizing request images beside each request's RPC thread "
                 "(0: only the RPC thread)")
      ->envname("PROVP_PREPROCESS_THREADS")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--host-memory-trim-seconds", o.host_memory_trim_seconds,
                 "Hand free host memory back to the kernel this often (0: never)")
      ->envname("PROVP_HOST_MEMORY_TRIM_SECONDS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-rpc-threads", o.max_rpc_threads)
      ->envname("PROVP_MAX_RPC_THREADS")
      ->capture_default_str();
  app.add_option("--keepalive-time-seconds", o.keepalive_time_seconds,
                 "HTTP/2 keepalive ping interval on idle connections")
      ->envname("PROVP_KEEPALIVE_TIME_SECONDS")
      ->capture_default_str();
  app.add_option("--keepalive-timeout-seconds", o.keepalive_timeout_seconds,
                 "drop a connection whose keepalive ping is not answered in this time")
      ->envname("PROVP_KEEPALIVE_TIMEOUT_SECONDS")
      ->capture_default_str();
  app.add_option("--max-connection-age-seconds", o.max_connection_age_seconds,
                 "GOAWAY after this connection age, so load balancers can rebalance (0 = off)")
      ->envname("PROVP_MAX_CONNECTION_AGE_SECONDS")
      ->capture_default_str();
  app.add_option("--max-connection-age-grace-seconds", o.max_connection_age_grace_seconds,
                 "time calls in flight get after that GOAWAY")
      ->envname("PROVP_MAX_CONNECTION_AGE_GRACE_SECONDS")
      ->capture_default_str();
  app.add_option("--max-connection-idle-seconds", o.max_connection_idle_seconds,
                 "close connections without calls after this long (0 = off)")
      ->envname("PROVP_MAX_CONNECTION_IDLE_SECONDS")
      ->capture_default_str();
  app.add_option("--liveness-stall-seconds", o.liveness_stall_seconds,
                 "/healthz fails when queued inference has not advanced this long (0 = never)")
      ->envname("PROVP_LIVENESS_STALL_SECONDS")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.log_json = log_format == "json";
  for (auto part : absl::StrSplit(dataset_roots, ':', absl::SkipEmpty())) {
    o.dataset_roots.emplace_back(part);
  }

  // Signals go to the waiting main thread only: block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (model_path.empty()) return Fail("--model (or PROVP_MODEL) is required");
  provp::engine::TorchEngineOptions to;
  to.model_path = model_path;
  to.vocab_path = vocab_path;
  to.device = device;
  to.num_threads = torch_threads;
  to.prompt_set_budget_bytes = prompt_set_budget_mib * (int64_t{1} << 20);
  to.tuning_yield_max_ms = tuning_yield_max_ms;
  to.tuning_threads_when_serving = tuning_threads_when_serving;
  auto engine = provp::engine::CreateTorchEngine(to);
  if (!engine.ok()) return Fail(engine.status().ToString());
  auto server = provp::server::Server::Create(o, std::move(*engine));
  if (!server.ok()) return Fail(server.status().ToString());
  std::fprintf(stderr, "provp-server %s configuration:\n%s\n", PROVP_VERSION,
               (*server)->ConfigSummary().c_str());
  absl::Status started = (*server)->Start();
  if (!started.ok()) return Fail(started.ToString());
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "provp-server: received %s, draining\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown();
  return 0;
}
