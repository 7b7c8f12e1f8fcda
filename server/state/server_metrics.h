// The server's metric families (API-GUIDE 3.4 names and labels), registered
// once on a metrics::Registry and held as cached references so hot paths
// only touch atomics. Thread-safe (the metric types are).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/metrics/registry.h"

namespace provp::server {

struct ServerMetrics {
  // RPC layer (grpc-ecosystem interceptor names).
  metrics::Family<metrics::Counter>* grpc_started = nullptr;
  metrics::Family<metrics::Counter>* grpc_handled = nullptr;
  metrics::Family<metrics::Histogram>* grpc_handling_seconds = nullptr;
  // Inference.
  metrics::Family<metrics::Counter>* classify_images = nullptr;
  metrics::Family<metrics::Histogram>* request_duration = nullptr;
  metrics::Family<metrics::Histogram>* queue_duration = nullptr;
  metrics::Family<metrics::Histogram>* stage_duration = nullptr;
  metrics::Histogram* batch_size = nullptr;
  metrics::Counter* inferences = nullptr;
  metrics::Counter* executions = nullptr;
  metrics::Gauge* queue_depth = nullptr;
  metrics::Gauge* inflight = nullptr;
  metrics::Family<metrics::Counter>* rejected = nullptr;
  metrics::Counter* cache_hits = nullptr;
  metrics::Counter* cache_misses = nullptr;
  metrics::Gauge* cache_entries = nullptr;
  metrics::Gauge* cache_bytes = nullptr;
  metrics::Gauge* prompt_sets_loaded = nullptr;
  metrics::Histogram* prompt_set_load_seconds = nullptr;
  metrics::Family<metrics::Counter>* uploads = nullptr;
  // Tuning.
  metrics::Family<metrics::Gauge>* tuning_jobs = nullptr;
  metrics::Family<metrics::Counter>* tuning_finished = nullptr;
  metrics::Family<metrics::Counter>* tuning_failures = nullptr;
  metrics::Histogram* tuning_job_duration = nullptr;
  metrics::Histogram* tuning_queue_wait = nullptr;
  metrics::Histogram* tuning_epoch_duration = nullptr;
  metrics::Gauge* tuning_progress = nullptr;
  metrics::Gauge* tuning_loss = nullptr;
  // Process / device.
  metrics::Family<metrics::Gauge>* gpu_allocated = nullptr;
  metrics::Family<metrics::Gauge>* gpu_reserved = nullptr;
  metrics::Family<metrics::Gauge>* gpu_total = nullptr;
  metrics::Family<metrics::Gauge>* build_info = nullptr;
  // Prompt-set residency in the engine (Engine::PromptSetCache, read at
  // scrape time): cumulative loads and evictions, resident sets and bytes.
  metrics::Gauge* prompt_set_loads = nullptr;
  metrics::Gauge* prompt_set_evictions = nullptr;
  metrics::Gauge* prompt_set_resident = nullptr;
  metrics::Gauge* prompt_set_resident_bytes = nullptr;
  metrics::Gauge* prompt_set_budget_bytes = nullptr;

  // Registers every family on `registry` (which must outlive the result).
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(metrics::Registry* registry);

  // Convenience for the RPC layer.
  void RpcStarted(const std::string& service, const std::string& method, const char* type);
  void RpcHandled(const std::string& service, const std::string& method, const char* type,
                  const char* code, double seconds);
};

}  // namespace provp::server
