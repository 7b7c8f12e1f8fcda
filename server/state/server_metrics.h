// The server's metric families (API-GUIDE 3.4 names and labels), registered
// once on prometheus-cpp through metrics::MetricFamilies and held as cached
// references so hot paths only touch atomics. Every labelled family gets its
// known series at creation, so dashboards and alerts (increase(), rate())
// see them at 0 before the first event. The GPU memory gauges are read at
// scrape time (metrics::ScrapeTimeGauges, set up in server.cc). Thread-safe
// (the metric types are).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/metrics/families.h"

namespace provp::server {

struct ServerMetrics {
  // RPC layer (grpc-ecosystem interceptor names).
  metrics::Family<metrics::Counter>* grpc_started = nullptr;
  metrics::Family<metrics::Counter>* grpc_handled = nullptr;
  metrics::Family<metrics::Histogram>* grpc_handling_seconds = nullptr;
  // The HTTP/JSON door (server/http_gateway.h), by route and HTTP status;
  // its calls are counted in the grpc_server_* families as well.
  metrics::Family<metrics::Counter>* http_requests = nullptr;
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
  // Process.
  metrics::Family<metrics::Gauge>* build_info = nullptr;
  // Prompt-set residency in the engine (Engine::PromptSetCache, read at
  // scrape time): cumulative loads and evictions, resident sets and bytes.

  // Registers every family on `families` (which must outlive the result)
  // with its known series at zero.
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(metrics::MetricFamilies* families);

  // Creates the RPC series of one method at zero (grpc_server_started_total,
  // grpc_server_handling_seconds, and grpc_server_handled_total for OK),
  // as go-grpc-prometheus' InitializeMetrics does.
  void InitializeRpc(const std::string& service, const std::string& method, const char* type);

  // Convenience for the RPC layer.
  void RpcStarted(const std::string& service, const std::string& method, const char* type);
  void RpcHandled(const std::string& service, const std::string& method, const char* type,
                  const char* code, double seconds);
};

}  // namespace provp::server
