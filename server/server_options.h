// Everything the server is configured by. main.cc fills it from flags and
// PROVP_* environment variables; tests fill it directly. Plain value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace provp::server {

struct Limits {
  // Largest gRPC message accepted (bytes).
  int64_t max_message_bytes = int64_t{64} << 20;
  // Images in one Classify/Embed request.
  int max_images_per_request = 64;
  // Pixels of one image (checked from the header before decoding).
  int64_t max_pixels_per_image = int64_t{16} * 1000 * 1000;
  // Classes in one request / class set / dataset.
  int max_classes_per_request = 1000;
  // Bytes of a class name, template, id or display name.
  int max_name_length = 256;
  // Templates in one request.
  int max_templates = 64;
  // Datasets, jobs (all states), prompt sets, class sets stored.
  int max_datasets = 100;
  int max_jobs = 1000;
  int max_queued_jobs = 16;
  int max_prompt_sets = 200;
  int max_class_sets = 200;
  // Total encoded bytes of one dataset upload / prompt-set import.
  int64_t max_upload_bytes = int64_t{2} << 30;
  // Images in one dataset.
  int64_t max_dataset_images = 200000;
};

struct BatchingOptions {
  // Images per model execution (a larger request runs alone).
  int max_batch_size = 32;
  // How long the first queued request waits for others (microseconds).
  int64_t max_queue_delay_us = 2000;
  // Queued images across requests; beyond it requests get
  // RESOURCE_EXHAUSTED (QUEUE_FULL).
  int max_queue_images = 1024;
  // Threads running model executions.
  int num_workers = 1;
};

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
  // State: SQLite database, datasets, prompt sets, checkpoints.
  std::string data_dir = "./provp-data";
  // Server-side folders RegisterDataset may read from (empty = none).
  std::vector<std::string> dataset_roots;
  // API key file ("" = authentication off, logged as a warning).
  std::string api_keys_file;
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
  Limits limits;
  BatchingOptions batching;
};

}  // namespace provp::server
