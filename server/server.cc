// Implementation of server.h.
#include "server/server.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <google/protobuf/descriptor.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/image/pixel_codec.h"
#include "core/metrics/exposer.h"
#include "core/metrics/families.h"
#include "core/metrics/scrape_gauges.h"
#include "core/util/blas_kernels.h"
#include "core/util/file_util.h"
#include "core/util/host_memory.h"
#include "core/util/status_macros.h"
#include "server/class_set_service.h"
#include "server/classification_service.h"
#include "server/dataset_service.h"
#include "server/http_gateway.h"
#include "server/prompt_set_service.h"
#include "server/rpc.h"
#include "server/serialize_interceptor.h"
#include "server/state/batcher.h"
#include "server/state/class_set_registry.h"
#include "server/state/classifier.h"
#include "server/state/crash_sweep.h"
#include "server/state/dataset_registry.h"
#include "server/state/file_migration.h"
#include "server/state/file_refs.h"
#include "server/state/job_runner.h"
#include "server/state/logging.h"
#include "server/state/prompt_set_registry.h"
#include "server/state/resource_names.h"
#include "server/state/server_metrics.h"
#include "server/state/text_feature_cache.h"
#include "server/tuning_service.h"

namespace provp::server {

namespace fs = std::filesystem;

bool IsLoopbackAddress(const std::string& listen_address) {
  if (absl::StartsWith(listen_address, "unix:") ||
      absl::StartsWith(listen_address, "unix-abstract:")) {
    return true;  // a local socket: only this host's users reach it
  }
  std::string host = listen_address;
  if (absl::StartsWith(host, "[")) {
    host = host.substr(
        1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else if (host.rfind(':') != std::string::npos) {
    host = host.substr(0, host.rfind(':'));
  }
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return false;
}

namespace {

// This process's name in job leases: host (the pod name on Kubernetes),
// pid and a random suffix, so a restarted replica never mistakes its
// predecessor's lease for its own.
std::string ReplicaId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] ? host : "replica", ":", getpid(), ":", RandomHex(6));
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  const util::Clock* clock = util::Clock::Real();
  // Set on SIGTERM: new work is refused with UNAVAILABLE.
  std::atomic<bool> draining{false};
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::FileStore> files;
  std::unique_ptr<FileRefs> file_refs;
  std::unique_ptr<Logger> logger;
  std::unique_ptr<ApiKeys> keys;
  metrics::MetricFamilies families;
  std::shared_ptr<metrics::ScrapeTimeGauges> device_memory;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<metrics::Exposer> exposer;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<TextFeatureCache> text_cache;
  std::unique_ptr<DatasetRegistry> datasets;
  std::unique_ptr<PromptSetRegistry> prompt_sets;
  std::unique_ptr<ClassSetRegistry> class_sets;
  std::unique_ptr<PreprocessPool> preprocess;
  std::unique_ptr<Classifier> classifier;
  std::unique_ptr<JobRunner> jobs;
  std::unique_ptr<ClassificationServiceImpl> classification;
  std::unique_ptr<ClassSetServiceImpl> class_set_service;
  std::unique_ptr<DatasetServiceImpl> dataset_service;
  std::unique_ptr<PromptSetServiceImpl> prompt_set_service;
  std::unique_ptr<TuningServiceImpl> tuning_service;
  std::unique_ptr<grpc::Server> grpc_server;
  // Holds an in-process channel of grpc_server, so it is declared after it
  // (destroyed first).
  std::unique_ptr<HttpGateway> http;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  int port = 0;
  std::atomic<bool> ready{false};
  // Liveness: when queued inference work last advanced (an execution
  // finished, or the queue went from empty to busy), in absl::Now() ns.
  std::atomic<int> queued_images{0};
  std::atomic<int64_t> last_progress_ns{0};
  double liveness_stall_seconds = 0;

  // Stuck = work is queued and nothing has advanced it for the stall time
  // (a wedged model call or dead batch worker). Warming up and draining
  // are alive: no work is queued then, or it is still moving.
  bool Alive() const {
    if (liveness_stall_seconds <= 0 || queued_images.load() == 0) return true;
    const int64_t idle_ns = absl::ToUnixNanos(absl::Now()) - last_progress_ns.load();
    return idle_ns < static_cast<int64_t>(liveness_stall_seconds * 1e9);
  }
  std::mutex shutdown_mu;
  bool shut_down = false;

  // With a shared store: the hourly sweep of unused files (FileRefs).
  std::thread file_sweeper;
  std::thread memory_trimmer;
  std::mutex sweeper_mu;
  std::condition_variable sweeper_cv;
  bool sweeper_stop = false;

  void SweepFiles() {
    absl::StatusOr<FileSweepResult> swept = file_refs->Sweep();
    if (!swept.ok()) {
      logger->Warning("the sweep of unused files did not run",
                      {{"error", swept.status().ToString()}});
    } else if (swept->removed > 0) {
      logger->Info("removed files no record refers to",
                   {{"count", absl::StrCat(swept->removed)},
                    {"bytes", absl::StrCat(swept->removed_bytes)},
                    {"kept_recent", absl::StrCat(swept->kept_recent)}});
    }
  }

  void SetHealth(bool serving) {
    ready = serving;
    if (!grpc_server) return;
    auto* health = grpc_server->GetHealthCheckService();
    if (!health) return;
    for (const char* svc :
         {"", "provp.v1.ClassificationService", "provp.v1.TuningService", "provp.v1.DatasetService",
          "provp.v1.PromptSetService", "provp.v1.ClassSetService"}) {
      health->SetServingStatus(svc, serving);
    }
  }
};

Server::Server() : impl_(std::make_unique<Impl>()) {}

Server::~Server() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options,
                                                       std::unique_ptr<engine::Engine> engine) {
  std::unique_ptr<Server> server(new Server());
  Impl& m = *server->impl_;
  m.logger = std::make_unique<Logger>(options.log_json ? LogFormat::kJson : LogFormat::kText);
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data-dir ", options.data_dir, ": ", ec.message()));
  }
  if (options.api_keys_file.empty() && !options.allow_unauthenticated &&
      !IsLoopbackAddress(options.listen_address)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", options.listen_address,
        " without --api-keys: every caller would be an admin. Pass --api-keys FILE, listen on "
        "127.0.0.1, or --allow-unauthenticated if an open server is meant"));
  }
  if (options.http_port >= 0 && options.api_keys_file.empty() && !options.allow_unauthenticated) {
    // The HTTP door authenticates exactly as gRPC does, so it must not open
    // the door the check above keeps shut.
    const std::string& bind = options.http_bind_address;
    const std::string http_listen =
        bind.find(':') != std::string::npos ? absl::StrCat("[", bind, "]:0") : bind + ":0";
    if (!IsLoopbackAddress(http_listen)) {
      return absl::FailedPreconditionError(
          absl::StrCat("refusing to serve HTTP on ", bind,
                       " (--http-bind) without --api-keys: every caller "
                       "would be an admin. Pass --api-keys FILE, --http-bind 127.0.0.1, or "
                       "--allow-unauthenticated if an open server is meant"));
    }
  }
  if (options.http_port > 65535 || options.http_port < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-port must be -1 (off) or in [0, 65535], got ", options.http_port));
  }
  if (!(options.http_timeout_seconds > 0)) {
    return absl::InvalidArgumentError("--http-timeout-seconds must be positive");
  }
  for (double v : {options.keepalive_time_seconds, options.keepalive_timeout_seconds}) {
    if (!(v > 0)) return absl::InvalidArgumentError("keepalive times must be positive");
  }
  for (double v : {options.max_connection_age_seconds, options.max_connection_age_grace_seconds,
                   options.max_connection_idle_seconds, options.liveness_stall_seconds}) {
    if (!(v >= 0)) {
      return absl::InvalidArgumentError("connection ages and the liveness stall must be >= 0");
    }
  }
  for (const char* sub : {"datasets", "jobs"}) {
    fs::create_directories(fs::path(options.data_dir) / sub, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("--data-dir ", options.data_dir,
                                                     ": cannot create ", sub, ": ", ec.message()));
    }
  }
  if (options.role != "all" && options.role != "inference" && options.role != "tuning") {
    return absl::InvalidArgumentError(
        absl::StrCat("--role '", options.role, "' must be all, inference or tuning"));
  }
  const bool shared = store::IsSharedStore(options.store);
  if (options.role != "all" && !shared) {
    // Without a shared store no other replica could run (or serve) the work.
    return absl::InvalidArgumentError(
        absl::StrCat("--role ", options.role, " needs a shared --store (postgresql://...)"));
  }
  if (!(options.job_lease_seconds >= 1)) {
    return absl::InvalidArgumentError("--job-lease-seconds must be at least 1");
  }
  ASSIGN_OR_RETURN(m.store, store::OpenStore(options.store, options.data_dir + "/state.db"));
  {
    // What a crash left (issue 14): staging folders, import files and
    // atomic-write temporaries hold no record. Alone on the folder (SQLite)
    // everything goes; beside other replicas only what is a day old.
    const absl::Duration min_age = shared ? absl::Hours(24) : absl::ZeroDuration();
    CrashSweepResult swept = SweepCrashLeftovers(options.data_dir, min_age, absl::Now());
    if (!swept.removed.empty()) {
      m.logger->Warning("removed what an earlier crash left in the data folder",
                        {{"count", absl::StrCat(swept.removed.size())},
                         {"bytes", absl::StrCat(swept.bytes)},
                         {"first", swept.removed.front()}});
    }
    for (const std::string& failure : swept.failed) {
      m.logger->Warning("cannot remove a crash leftover", {{"error", failure}});
    }
  }
  {
    // Files by content key. Beside other replicas, a temporary file in it
    // may be another replica's write in progress: only day-old ones go.
    store::SharedDirOptions fo;
    fo.root = options.file_store.empty() ? options.data_dir + "/blobs" : options.file_store;
    fo.leftover_min_age = shared ? absl::Hours(24) : absl::ZeroDuration();
    ASSIGN_OR_RETURN(m.files, store::OpenSharedDirFileStore(fo));
    if (!(options.file_store_grace_seconds >= 0)) {
      return absl::InvalidArgumentError("--file-store-grace-seconds must be >= 0");
    }
    FileRefsOptions ro;
    ro.grace = shared ? absl::Seconds(options.file_store_grace_seconds) : absl::ZeroDuration();
    m.file_refs = std::make_unique<FileRefs>(m.store.get(), m.files.get(), m.logger.get(), ro);
    // An older data folder's files by name move into the file store.
    FileMigrationResult moved =
        MigrateNameAddressedFiles(m.store.get(), m.file_refs.get(), options.data_dir);
    if (moved.prompt_sets > 0 || moved.datasets > 0) {
      m.logger->Info("moved name-addressed files into the file store",
                     {{"prompt_sets", absl::StrCat(moved.prompt_sets)},
                      {"datasets", absl::StrCat(moved.datasets)},
                      {"file_store", fo.root}});
    }
    for (const std::string& failure : moved.failed) {
      m.logger->Warning("left in the old layout (read from there)", {{"error", failure}});
    }
    m.SweepFiles();
  }
  if (options.api_keys_file.empty()) {
    m.keys = ApiKeys::Disabled();
  } else {
    ASSIGN_OR_RETURN(m.keys, ApiKeys::Load(options.api_keys_file));
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
  }
  if (!options.tls_cert_file.empty()) {
    grpc::SslServerCredentialsOptions ssl(
        options.tls_client_ca_file.empty()
            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    ASSIGN_OR_RETURN(pair.cert_chain, util::ReadFile(options.tls_cert_file, 1 << 20));
    ASSIGN_OR_RETURN(pair.private_key, util::ReadFile(options.tls_key_file, 1 << 20));
    ssl.pem_key_cert_pairs.push_back(pair);
    if (!options.tls_client_ca_file.empty()) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, util::ReadFile(options.tls_client_ca_file, 1 << 20));
    }
    m.credentials = grpc::SslServerCredentials(ssl);
  } else {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    m.credentials = grpc::InsecureServerCredentials();
  }
  if (options.limits.max_images_per_request <= 0 || options.batching.max_batch_size <= 0 ||
      options.limits.max_message_bytes <= 0 || options.batching.max_queue_images <= 0 ||
      options.limits.stream_max_in_flight <= 0 || options.preprocess_threads < 0) {
    return absl::InvalidArgumentError("limits and batch sizes must be positive");
  }
  ASSIGN_OR_RETURN(m.metrics, ServerMetrics::Create(&m.families));
  m.engine = std::move(engine);
  m.metrics->build_info
      ->WithLabels({PROVP_VERSION, PROVP_LIBTORCH_VERSION,
                    m.engine->info().device.rfind("cuda", 0) == 0 ? "cuda" : "none",
                    m.engine->info().backbone.substr(0, 16)})
      .Set(1);
  // Every RPC method of the registered services, at zero.
  for (const char* service :
       {"provp.v1.ClassificationService", "provp.v1.ClassSetService", "provp.v1.DatasetService",
        "provp.v1.PromptSetService", "provp.v1.TuningService"}) {
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    if (descriptor == nullptr) continue;
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const auto* method = descriptor->method(i);
      const char* type = method->client_streaming()
                             ? (method->server_streaming() ? "bidi_stream" : "client_stream")
                             : (method->server_streaming() ? "server_stream" : "unary");
      m.metrics->InitializeRpc(service, method->name(), type);
    }
  }
  ServerMetrics* sm = m.metrics.get();
  // Device memory is read from the engine at scrape time. On CPU there is
  // none to report; the series exist (gpu="0", value 0) so dashboards and
  // alerts find them. NaN if the device stops answering.
  m.device_memory = std::make_shared<metrics::ScrapeTimeGauges>();
  {
    const std::optional<engine::DeviceMemory> memory = m.engine->DeviceMemoryUsage();
    const std::string gpu =
        memory ? memory->device.substr(memory->device.find(':') + 1) : std::string("0");
    const engine::Engine* e = m.engine.get();
    const bool on_device = memory.has_value();
    auto reader = [e, gpu, on_device](int64_t engine::DeviceMemory::*field) {
      return [e, gpu, on_device, field]() -> metrics::ScrapeTimeGauges::Series {
        if (!on_device) return {{{{"gpu", gpu}}, 0.0}};
        std::optional<engine::DeviceMemory> now = e->DeviceMemoryUsage();
        return {{{{"gpu", gpu}}, now ? static_cast<double>((*now).*field) : std::nan("")}};
      };
    };
    RETURN_IF_ERROR(m.device_memory->Add("provp_gpu_memory_allocated_bytes",
                                         "GPU memory allocated by LibTorch (0 on CPU).",
                                         reader(&engine::DeviceMemory::allocated_bytes)));
    RETURN_IF_ERROR(
        m.device_memory->Add("provp_gpu_memory_reserved_bytes",
                             "GPU memory reserved by LibTorch's caching allocator (0 on CPU).",
                             reader(&engine::DeviceMemory::reserved_bytes)));
    RETURN_IF_ERROR(m.device_memory->Add("provp_gpu_memory_total_bytes",
                                         "Total memory of the GPU (0 on CPU).",
                                         reader(&engine::DeviceMemory::total_bytes)));
    // The engine's prompt-set cache, read at scrape time too.
    auto cache = [e](int64_t engine::PromptSetCacheStats::*field) {
      return [e, field]() -> metrics::ScrapeTimeGauges::Series {
        return {{{}, static_cast<double>(e->PromptSetCache().*field)}};
      };
    };
    struct CacheGauge {
      const char* name;
      const char* help;
      int64_t engine::PromptSetCacheStats::*field;
    };
    for (const CacheGauge& g : {
             CacheGauge{"provp_prompt_set_cache_loads",
                        "Prompt-set tensor loads from files since start (first loads and reloads "
                        "after eviction).",
                        &engine::PromptSetCacheStats::loads},
             CacheGauge{"provp_prompt_set_cache_evictions",
                        "Prompt sets whose tensors were evicted to stay within the memory budget, "
                        "since start.",
                        &engine::PromptSetCacheStats::evictions},
             CacheGauge{"provp_prompt_set_resident",
                        "Prompt sets whose tensors are resident on the device.",
                        &engine::PromptSetCacheStats::resident_sets},
             CacheGauge{"provp_prompt_set_resident_bytes",
                        "Device memory held by resident prompt-set tensors.",
                        &engine::PromptSetCacheStats::resident_bytes},
             CacheGauge{"provp_prompt_set_budget_bytes", "Prompt-set memory budget (0: no limit).",
                        &engine::PromptSetCacheStats::budget_bytes},
         }) {
      RETURN_IF_ERROR(m.device_memory->Add(g.name, g.help, cache(g.field)));
    }
  }
  BatcherHooks hooks;
  Impl* impl = &m;
  impl->liveness_stall_seconds = options.liveness_stall_seconds;
  hooks.on_execution = [sm, impl](int n) {
    impl->last_progress_ns = absl::ToUnixNanos(absl::Now());
    sm->batch_size->Observe(n);
    sm->inferences->Increment(n);
    sm->executions->Increment();
  };
  hooks.on_dequeue = [sm](const std::string& ps, double seconds) {
    sm->queue_duration->WithLabels({ps.empty() ? "zero_shot" : ps}).Observe(seconds);
  };
  hooks.on_reject = [sm](const std::string& reason) {
    sm->rejected->WithLabels({reason}).Increment();
  };
  hooks.on_queue_depth = [sm, impl](int n) {
    if (impl->queued_images.exchange(n) == 0 && n > 0) {
      impl->last_progress_ns = absl::ToUnixNanos(absl::Now());
    }
    sm->queue_depth->Set(n);
  };
  m.batcher = std::make_unique<Batcher>(m.engine.get(), options.batching, hooks);
  m.text_cache = std::make_unique<TextFeatureCache>(options.text_cache_bytes);

  m.options = options;
  Logger* logger = m.logger.get();
  store::Store* store = m.store.get();
  m.datasets = std::make_unique<DatasetRegistry>(
      store, m.file_refs.get(), m.clock, logger,
      DatasetRegistryOptions{options.data_dir, options.dataset_roots, options.limits});
  m.prompt_sets = std::make_unique<PromptSetRegistry>(
      store, m.file_refs.get(), m.engine.get(), m.clock, sm, logger,
      PromptSetRegistryOptions{
          options.data_dir, options.limits,
          shared ? absl::Seconds(options.prompt_set_refresh_seconds) : absl::ZeroDuration()});
  m.class_sets = std::make_unique<ClassSetRegistry>(store, m.clock, options.limits);
  m.preprocess = std::make_unique<PreprocessPool>(options.preprocess_threads);
  m.classifier = std::make_unique<Classifier>(m.engine.get(), m.batcher.get(), m.preprocess.get(),
                                              m.text_cache.get(), m.prompt_sets.get(),
                                              m.class_sets.get(), sm, m.clock, options.limits);
  JobRunnerOptions job_options;
  job_options.data_dir = options.data_dir;
  job_options.limits = options.limits;
  job_options.auto_load_prompt_sets = options.auto_load_prompt_sets;
  job_options.shared_store = shared;
  job_options.lease = absl::Seconds(options.job_lease_seconds);
  job_options.owner = ReplicaId();
  m.jobs = std::make_unique<JobRunner>(store, m.file_refs.get(), m.engine.get(), m.datasets.get(),
                                       m.prompt_sets.get(), m.clock, sm, logger, job_options);
  const RpcEnv rpc_env{*m.logger, *m.keys, *m.metrics, m.draining};
  m.classification = std::make_unique<ClassificationServiceImpl>(rpc_env, m.classifier.get());
  m.class_set_service = std::make_unique<ClassSetServiceImpl>(rpc_env, m.class_sets.get());
  m.dataset_service = std::make_unique<DatasetServiceImpl>(rpc_env, m.datasets.get());
  m.prompt_set_service = std::make_unique<PromptSetServiceImpl>(rpc_env, m.prompt_sets.get());
  m.tuning_service = std::make_unique<TuningServiceImpl>(
      rpc_env, m.jobs.get(), absl::Seconds(options.watch_heartbeat_seconds));
  return server;
}

absl::Status Server::Start() {
  Impl& m = *impl_;
  const ServerOptions& o = m.options;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen_address, m.credentials, &m.port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.limits.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(o.limits.max_message_bytes));
  // Long Watch streams: let clients ping (>= 10 s apart) even without calls,
  // so proxies and clients do not see GOAWAY too_many_pings.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  const auto ms = [](double seconds) { return static_cast<int>(std::min(seconds * 1000, 2e9)); };
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ms(o.keepalive_time_seconds));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms(o.keepalive_timeout_seconds));
  if (o.max_connection_age_seconds > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms(o.max_connection_age_seconds));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               ms(o.max_connection_age_grace_seconds));
  }
  if (o.max_connection_idle_seconds > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, ms(o.max_connection_idle_seconds));
  }
  grpc::ResourceQuota quota("provp");
  quota.SetMaxThreads(std::max(4, o.max_rpc_threads));
  builder.SetResourceQuota(quota);
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<SerializeTimingInterceptorFactory>(m.metrics.get()));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  builder.RegisterService(m.classification.get());
  builder.RegisterService(m.class_set_service.get());
  builder.RegisterService(m.dataset_service.get());
  builder.RegisterService(m.prompt_set_service.get());
  builder.RegisterService(m.tuning_service.get());
  m.grpc_server = builder.BuildAndStart();
  if (!m.grpc_server || m.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen_address));
  }
  m.SetHealth(false);
  if (o.metrics_port >= 0) {
    metrics::ExposerOptions eo;
    eo.bind_address = o.metrics_bind_address;
    eo.port = o.metrics_port;
    Impl* impl = &m;
    eo.live = [impl] { return impl->Alive(); };
    eo.ready = [impl] { return impl->ready.load() && impl->Alive(); };
    ASSIGN_OR_RETURN(m.exposer,
                     metrics::Exposer::Create({m.families.registry(), m.device_memory}, eo));
    // As soon as it is bound: scrapers (and /readyz pollers) may start
    // before the engine has warmed up.
    if (!o.metrics_port_file.empty()) {
      RETURN_IF_ERROR(
          util::WriteFileAtomic(o.metrics_port_file, absl::StrCat(m.exposer->port(), "\n")));
    }
  }
  if (o.http_port >= 0) {
    // Calls from the HTTP door enter the gRPC server in process, so they
    // take the same path (auth, limits, metrics, logs) as remote ones.
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(o.limits.max_message_bytes));
    args.SetMaxSendMessageSize(static_cast<int>(o.limits.max_message_bytes));
    HttpGatewayOptions ho;
    ho.bind_address = o.http_bind_address;
    ho.port = o.http_port;
    ho.num_threads = o.http_threads;
    ho.max_body_bytes = o.limits.max_message_bytes;
    ho.timeout = absl::Seconds(o.http_timeout_seconds);
    ho.allow_origin = o.http_allow_origin;
    ASSIGN_OR_RETURN(
        m.http, HttpGateway::Create(m.grpc_server->InProcessChannel(args), m.metrics.get(), ho));
    if (!o.http_port_file.empty()) {
      RETURN_IF_ERROR(util::WriteFileAtomic(o.http_port_file, absl::StrCat(m.http->port(), "\n")));
    }
    if (!o.tls_cert_file.empty()) {
      m.logger->Warning(
          "the HTTP/JSON door is plain HTTP: --tls-cert secures gRPC only; put a TLS-terminating "
          "proxy in front of --http-port when it leaves the host",
          {{"http_port", absl::StrCat(m.http->port())}});
    }
  }
  m.logger->Info("listening", {{"port", absl::StrCat(m.port)},
                               {"metrics_port", absl::StrCat(metrics_port())},
                               {"http_port", absl::StrCat(http_port())}});
  absl::Time warm_start = absl::Now();
  absl::Status warm = m.engine->Warmup();
  if (!warm.ok()) {
    m.logger->Error("engine warm-up failed; staying NOT_SERVING", {{"error", warm.ToString()}});
    return warm;
  }
  m.logger->Info("engine warmed",
                 {{"seconds", absl::StrCat(absl::ToDoubleSeconds(absl::Now() - warm_start))}});
  // A tuning worker loads prompt sets only when a request needs one; an
  // inference replica never runs jobs (they wait for a tuning replica).
  if (o.role != "tuning") m.prompt_sets->Recover();
  if (o.role != "inference") m.jobs->Start();
  if (store::IsSharedStore(o.store)) {
    // Alone, removals are immediate and the start-up sweep catches what a
    // crash left; beside other replicas the grace defers removals, so they
    // happen here.
    Impl* impl = &m;
    m.file_sweeper = std::thread([impl] {
      std::unique_lock<std::mutex> lock(impl->sweeper_mu);
      while (!impl->sweeper_cv.wait_for(lock, std::chrono::hours(1),
                                        [impl] { return impl->sweeper_stop; })) {
        lock.unlock();
        impl->SweepFiles();
        lock.lock();
      }
    });
  }
  if (o.host_memory_trim_seconds > 0) {
    // The engine keeps freed host memory for its forwards
    // (util::KeepFreedHostMemory), so without a trim the whole free pages
    // left after a burst or a tuning job are never handed back. A trim now
    // and then returns them; the next forward faults in only what it uses.
    // (It does not stop the soak's slow creep of partly used pages:
    // docs/benchmarks.md.)
    Impl* impl = &m;
    const auto period =
        std::chrono::milliseconds(static_cast<int64_t>(o.host_memory_trim_seconds * 1000));
    m.memory_trimmer = std::thread([impl, period] {
      std::unique_lock<std::mutex> lock(impl->sweeper_mu);
      while (!impl->sweeper_cv.wait_for(lock, period, [impl] { return impl->sweeper_stop; })) {
        lock.unlock();
        util::ReturnFreedHostMemory();
        lock.lock();
      }
    });
  }
  // The port file is written last, so a test that sees it can rely on
  // SERVING.
  m.SetHealth(true);
  if (!o.port_file.empty()) {
    RETURN_IF_ERROR(util::WriteFileAtomic(o.port_file, absl::StrCat(m.port, "\n")));
  }
  m.logger->Info("serving");
  return absl::OkStatus();
}

void Server::Wait() {
  if (impl_->grpc_server) impl_->grpc_server->Wait();
}

void Server::Shutdown() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.shutdown_mu);
  if (m.shut_down) return;
  m.shut_down = true;
  if (m.logger) m.logger->Info("shutting down: draining");
  m.draining = true;
  m.SetHealth(false);
  if (m.jobs) m.jobs->Stop();
  {
    std::lock_guard<std::mutex> l(m.sweeper_mu);
    m.sweeper_stop = true;
  }
  m.sweeper_cv.notify_all();
  if (m.file_sweeper.joinable()) m.file_sweeper.join();
  if (m.memory_trimmer.joinable()) m.memory_trimmer.join();
  if (m.grpc_server) {
    auto deadline =
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(m.options.shutdown_grace_seconds * 1000));
    m.grpc_server->Shutdown(deadline);
  }
  // After gRPC: HTTP requests in flight were gRPC calls and have ended with
  // them; new ones got DRAINING (503) meanwhile.
  m.http.reset();
  m.batcher.reset();
  m.exposer.reset();
  if (m.logger) m.logger->Info("stopped");
}

int Server::port() const { return impl_->port; }

int Server::metrics_port() const { return impl_->exposer ? impl_->exposer->port() : -1; }

int Server::http_port() const { return impl_->http ? impl_->http->port() : -1; }

std::string Server::ConfigSummary() const {
  const ServerOptions& o = impl_->options;
  const Limits& l = o.limits;
  const engine::ModelInfo& info = impl_->engine->info();
  std::vector<std::string> lines = {
      absl::StrCat("listen_address=", o.listen_address),
      absl::StrCat("metrics_port=", o.metrics_port),
      o.http_port < 0
          ? std::string("http_port=-1 (HTTP/JSON door off)")
          : absl::StrCat("http_port=", o.http_port, " http_bind=", o.http_bind_address,
                         " http_threads=", o.http_threads,
                         " http_timeout_seconds=", o.http_timeout_seconds, " http_allow_origin=",
                         o.http_allow_origin.empty() ? "(no CORS)" : o.http_allow_origin),
      absl::StrCat("data_dir=", o.data_dir, " role=", o.role),
      absl::StrCat("image_codec=", image::DefaultPixelCodec().name),
      absl::StrCat("blas=", util::BlasSummary()),
      absl::StrCat("file_store=", o.file_store.empty() ? o.data_dir + "/blobs" : o.file_store,
                   " file_store_grace_seconds=",
                   store::IsSharedStore(o.store) ? o.file_store_grace_seconds : 0.0),
      absl::StrCat("store=",
                   o.store.empty() ? "sqlite (data_dir/state.db)" : store::RedactStoreSpec(o.store),
                   " job_lease_seconds=", o.job_lease_seconds),
      absl::StrCat("dataset_roots=", absl::StrJoin(o.dataset_roots, ",")),
      absl::StrCat("api_keys=",
                   o.api_keys_file.empty()
                       ? std::string("OFF (no authentication)")
                       : absl::StrCat(o.api_keys_file, " (", impl_->keys->size(), " keys)")),
      absl::StrCat("keepalive_time_seconds=", o.keepalive_time_seconds,
                   " keepalive_timeout_seconds=", o.keepalive_timeout_seconds,
                   " max_connection_age_seconds=", o.max_connection_age_seconds,
                   " max_connection_age_grace_seconds=", o.max_connection_age_grace_seconds,
                   " max_connection_idle_seconds=", o.max_connection_idle_seconds),
      absl::StrCat("tls=", o.tls_cert_file.empty() ? "off" : "on",
                   o.tls_client_ca_file.empty() ? "" : " (mTLS)"),
      absl::StrCat("backbone=", info.backbone, " (", info.description, ") device=", info.device),
      absl::StrCat("max_message_bytes=", l.max_message_bytes, " max_images_per_request=",
                   l.max_images_per_request, " max_pixels_per_image=", l.max_pixels_per_image),
      absl::StrCat("max_classes_per_request=", l.max_classes_per_request,
                   " max_name_length=", l.max_name_length, " max_datasets=", l.max_datasets,
                   " max_jobs=", l.max_jobs, " max_queued_jobs=", l.max_queued_jobs,
                   " max_upload_bytes=", l.max_upload_bytes),
      absl::StrCat("batching: max_batch_size=", o.batching.max_batch_size, " max_queue_delay_us=",
                   o.batching.max_queue_delay_us, " max_queue_images=", o.batching.max_queue_images,
                   " workers=", o.batching.num_workers,
                   " mix_prompt_sets=", o.batching.mix_prompt_sets ? "true" : "false",
                   " preprocess_threads=", o.preprocess_threads,
                   " stream_max_in_flight=", l.stream_max_in_flight),
      absl::StrCat("text_cache_bytes=", o.text_cache_bytes,
                   " auto_load_prompt_sets=", o.auto_load_prompt_sets ? "true" : "false",
                   " log_format=", o.log_json ? "json" : "text",
                   " host_memory_trim_seconds=", o.host_memory_trim_seconds)};
  return absl::StrJoin(lines, "\n");
}

}  // namespace provp::server
