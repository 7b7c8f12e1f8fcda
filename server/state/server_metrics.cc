// Implementation of server_metrics.h.
#include "server/state/server_metrics.h"

#include <vector>

#include "core/util/status_macros.h"
#include "server/state/errors.h"

namespace provp::server {
namespace {

std::vector<double> Exp(double start, double factor, int n) {
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < n; ++i, v *= factor) out.push_back(v);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(metrics::MetricFamilies* r) {
  auto m = std::make_unique<ServerMetrics>();
  const std::vector<std::string> rpc = {"grpc_service", "grpc_method", "grpc_type"};
  ASSIGN_OR_RETURN(m->grpc_started,
                   r->AddCounter("grpc_server_started_total", "RPCs started on the server.", rpc));
  ASSIGN_OR_RETURN(
      m->grpc_handled,
      r->AddCounter("grpc_server_handled_total", "RPCs completed on the server, by gRPC code.",
                    {"grpc_service", "grpc_method", "grpc_type", "grpc_code"}));
  ASSIGN_OR_RETURN(
      m->grpc_handling_seconds,
      r->AddHistogram("grpc_server_handling_seconds", "Time from RPC start to completion.", rpc,
                      {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}));
  ASSIGN_OR_RETURN(m->http_requests,
                   r->AddCounter("provp_http_requests_total",
                                 "Requests to the HTTP/JSON door, by route and HTTP status.",
                                 {"route", "code"}));
  metrics::FamilyOptions capped;
  capped.max_label_sets = 50;
  capped.fold_labels = {"prompt_set"};
  ASSIGN_OR_RETURN(m->classify_images, r->AddCounter("provp_classify_images_total",
                                                     "Images classified.", {"prompt_set"}, capped));
  ASSIGN_OR_RETURN(
      m->request_duration,
      r->AddHistogram("provp_request_duration_seconds", "Inference request latency, end to end.",
                      {"method", "prompt_set"},
                      {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, capped));
  ASSIGN_OR_RETURN(
      m->queue_duration,
      r->AddHistogram("provp_queue_duration_seconds", "Time requests wait in the batching queue.",
                      {"prompt_set"},
                      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
                      capped));
  ASSIGN_OR_RETURN(m->stage_duration,
                   r->AddHistogram("provp_stage_duration_seconds", "Time per inference stage.",
                                   {"stage"}, Exp(0.0001, 2.5, 14)));
  ASSIGN_OR_RETURN(auto* bs, r->AddHistogram("provp_batch_size", "Images per model execution.", {},
                                             {1, 2, 4, 8, 16, 32, 64, 128, 256}));
  m->batch_size = &bs->Get();
  ASSIGN_OR_RETURN(
      auto* inf, r->AddCounter("provp_inferences_total", "Images run through the image encoder."));
  m->inferences = &inf->Get();
  ASSIGN_OR_RETURN(auto* ex,
                   r->AddCounter("provp_executions_total", "Image-encoder executions (batches)."));
  m->executions = &ex->Get();
  ASSIGN_OR_RETURN(auto* qd, r->AddGauge("provp_queue_depth", "Images waiting to be batched."));
  m->queue_depth = &qd->Get();
  ASSIGN_OR_RETURN(auto* fl,
                   r->AddGauge("provp_inflight_requests", "Inference requests being handled."));
  m->inflight = &fl->Get();
  ASSIGN_OR_RETURN(m->rejected,
                   r->AddCounter("provp_requests_rejected_total",
                                 "Inference requests rejected, by reason.", {"reason"}));
  ASSIGN_OR_RETURN(auto* ch, r->AddCounter("provp_text_embedding_cache_hits_total",
                                           "Class-list text feature cache hits."));
  m->cache_hits = &ch->Get();
  ASSIGN_OR_RETURN(auto* cm, r->AddCounter("provp_text_embedding_cache_misses_total",
                                           "Class-list text feature cache misses."));
  m->cache_misses = &cm->Get();
  ASSIGN_OR_RETURN(auto* ce, r->AddGauge("provp_text_embedding_cache_entries",
                                         "Class lists in the text feature cache."));
  m->cache_entries = &ce->Get();
  ASSIGN_OR_RETURN(auto* cb, r->AddGauge("provp_text_embedding_cache_bytes",
                                         "Bytes held by the text feature cache."));
  m->cache_bytes = &cb->Get();
  ASSIGN_OR_RETURN(auto* pl, r->AddGauge("provp_prompt_sets_loaded", "Prompt sets loaded."));
  m->prompt_sets_loaded = &pl->Get();
  ASSIGN_OR_RETURN(auto* pld, r->AddHistogram("provp_prompt_set_load_duration_seconds",
                                              "Time to load a prompt set.", {}, Exp(0.001, 4, 8)));
  m->prompt_set_load_seconds = &pld->Get();
  ASSIGN_OR_RETURN(m->uploads, r->AddCounter("provp_uploads_total",
                                             "Dataset uploads and prompt-set imports by result.",
                                             {"kind", "result"}));
  ASSIGN_OR_RETURN(m->tuning_jobs,
                   r->AddGauge("provp_tuning_jobs", "Tuning jobs by state.", {"state"}));
  ASSIGN_OR_RETURN(m->tuning_finished,
                   r->AddCounter("provp_tuning_jobs_finished_total",
                                 "Tuning jobs that ended, by final state.", {"state"}));
  ASSIGN_OR_RETURN(m->tuning_failures,
                   r->AddCounter("provp_tuning_job_failures_total",
                                 "Failed tuning jobs by the error's gRPC code.", {"reason"}));
  const std::vector<double> job_buckets = {60, 300, 900, 1800, 3600, 7200, 14400, 28800};
  ASSIGN_OR_RETURN(auto* jd, r->AddHistogram("provp_tuning_job_duration_seconds",
                                             "Tuning job run time.", {}, job_buckets));
  m->tuning_job_duration = &jd->Get();
  ASSIGN_OR_RETURN(auto* qw, r->AddHistogram("provp_tuning_queue_wait_seconds",
                                             "Time jobs wait in QUEUED.", {}, job_buckets));
  m->tuning_queue_wait = &qw->Get();
  ASSIGN_OR_RETURN(
      auto* ed, r->AddHistogram("provp_tuning_epoch_duration_seconds", "Time per training epoch.",
                                {}, {1, 2, 5, 10, 30, 60, 120, 300, 600}));
  m->tuning_epoch_duration = &ed->Get();
  ASSIGN_OR_RETURN(auto* tp, r->AddGauge("provp_tuning_current_progress_ratio",
                                         "Progress of the running tuning job (0-1)."));
  m->tuning_progress = &tp->Get();
  ASSIGN_OR_RETURN(auto* tl, r->AddGauge("provp_tuning_current_train_loss",
                                         "Latest training loss of the running tuning job."));
  m->tuning_loss = &tl->Get();
  ASSIGN_OR_RETURN(m->build_info,
                   r->AddGauge("provp_build_info", "Build and backbone information (value 1).",
                               {"version", "libtorch", "cuda", "backbone"}));

  // Known series at zero. The label values are every value the server
  // passes; prompt-set ids appear as they are used.
  m->classify_images->WithLabels({"zero_shot"});
  // Whether or not the HTTP/JSON door is on, so the family is always listed.
  for (const char* route :
       {"classify", "embed-images", "embed-texts", "server-info", "health", "other"}) {
    m->http_requests->WithLabels({route, "200"});
  }
  m->request_duration->WithLabels({"Classify", "zero_shot"});
  m->queue_duration->WithLabels({"zero_shot"});
  for (const char* stage : {"decode", "resize", "text_encode", "score", "serialize"})
    m->stage_duration->WithLabels({stage});
  for (const char* reason : {"invalid", "too_large", "queue_full", "deadline"}) {
    m->rejected->WithLabels({reason});
  }
  for (const char* kind : {"dataset", "prompt_set"}) {
    for (const char* result : {"ok", "error"}) m->uploads->WithLabels({kind, result});
  }
  for (const char* state : {"queued", "running", "cancelling"}) m->tuning_jobs->WithLabels({state});
  for (const char* state : {"succeeded", "failed", "cancelled"}) {
    m->tuning_finished->WithLabels({state});
  }
  for (int code = 1; code <= 16; ++code) {
    m->tuning_failures->WithLabels({GoCodeName(static_cast<absl::StatusCode>(code))});
  }
  return m;
}

void ServerMetrics::InitializeRpc(const std::string& service, const std::string& method,
                                  const char* type) {
  grpc_started->WithLabels({service, method, type});
  grpc_handled->WithLabels({service, method, type, "OK"});
  grpc_handling_seconds->WithLabels({service, method, type});
}

void ServerMetrics::RpcStarted(const std::string& service, const std::string& method,
                               const char* type) {
  grpc_started->WithLabels({service, method, type}).Increment();
}

void ServerMetrics::RpcHandled(const std::string& service, const std::string& method,
                               const char* type, const char* code, double seconds) {
  grpc_handled->WithLabels({service, method, type, code}).Increment();
  grpc_handling_seconds->WithLabels({service, method, type}).Observe(seconds);
}

}  // namespace provp::server
