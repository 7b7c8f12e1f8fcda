// Implementation of jobs.h.
#include "server/jobs.h"

#include <cmath>
#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/data/loaders.h"
#include "core/image/image_io.h"
#include "core/train/preset_names.h"
#include "core/util/status_macros.h"
#include "server/dataset_service.h"
#include "server/prompt_sets.h"

namespace provp::server {
namespace {

namespace fs = std::filesystem;
constexpr char kType[] = "provp.v1.TuningJob";

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(t.seconds() * 1000000 + t.nanos() / 1000);
}

absl::Status ValidateHyperparameters(const v1::Hyperparameters& hp, int64_t max_shots) {
  if (hp.shots() <= 0) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.shots must be >= 1",
                           "tuning_job.hyperparameters.shots");
  }
  if (hp.shots() > max_shots) {
    return InvalidArgument(
        "NOT_ENOUGH_SHOTS",
        absl::StrCat("hyperparameters.shots is ", hp.shots(), " but the dataset has only ",
                     max_shots, " training images for some base class"),
        "tuning_job.hyperparameters.shots");
  }
  auto range = [](int64_t v, int64_t hi, const char* field) -> absl::Status {
    if (v < 0 || v > hi) {
      return InvalidArgument("INVALID_HYPERPARAMETER",
                             absl::StrCat("hyperparameters.", field, " must be in [0, ", hi, "]"),
                             absl::StrCat("tuning_job.hyperparameters.", field));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(range(hp.epochs(), 1000, "epochs"));
  RETURN_IF_ERROR(range(hp.batch_size(), 4096, "batch_size"));
  RETURN_IF_ERROR(range(hp.num_prompts(), 1024, "num_prompts"));
  if (!std::isfinite(hp.learning_rate()) || hp.learning_rate() < 0 || hp.learning_rate() > 100) {
    return InvalidArgument("INVALID_HYPERPARAMETER",
                           "hyperparameters.learning_rate must be in [0, 100]",
                           "tuning_job.hyperparameters.learning_rate");
  }
  static const std::set<std::string> kVariants = {"", "provp_ref", "provp", "vpt_deep",
                                                  "vpt_shallow"};
  if (!kVariants.count(hp.variant())) {
    return InvalidArgument("INVALID_HYPERPARAMETER",
                           "hyperparameters.variant must be provp_ref, provp, vpt_deep or "
                           "vpt_shallow",
                           "tuning_job.hyperparameters.variant");
  }
  // Checked here, not when the job runs: an unknown preset would otherwise
  // be accepted and the job would fail minutes later.
  if (!hp.preset().empty() && !train::IsPresetName(hp.preset())) {
    std::vector<std::string> names(std::begin(train::kPresetNames), std::end(train::kPresetNames));
    return InvalidArgument(
        "INVALID_HYPERPARAMETER",
        absl::StrCat("hyperparameters.preset '", hp.preset(),
                     "' is not a preset (expected one of: ", absl::StrJoin(names, ", "), ")"),
        "tuning_job.hyperparameters.preset");
  }
  if (hp.has_alpha() && (!std::isfinite(hp.alpha()) || hp.alpha() < 0 || hp.alpha() > 1)) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.alpha must be in [0, 1]",
                           "tuning_job.hyperparameters.alpha");
  }
  if (hp.has_ref_lambda() && (!std::isfinite(hp.ref_lambda()) || hp.ref_lambda() < 0)) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.ref_lambda must be >= 0",
                           "tuning_job.hyperparameters.ref_lambda");
  }
  if (hp.has_weight_decay() && (!std::isfinite(hp.weight_decay()) || hp.weight_decay() < 0)) {
    return InvalidArgument("INVALID_HYPERPARAMETER", "hyperparameters.weight_decay must be >= 0",
                           "tuning_job.hyperparameters.weight_decay");
  }
  if (hp.has_min_crop_scale() &&
      !(hp.min_crop_scale() > 0 && hp.min_crop_scale() <= 1)) {  // also rejects NaN
    return InvalidArgument("INVALID_HYPERPARAMETER",
                           "hyperparameters.min_crop_scale must be in (0, 1]",
                           "tuning_job.hyperparameters.min_crop_scale");
  }
  return absl::OkStatus();
}

}  // namespace

bool JobManager::IsTerminal(v1::TuningJob::State s) {
  return s == v1::TuningJob::SUCCEEDED || s == v1::TuningJob::FAILED ||
         s == v1::TuningJob::CANCELLED;
}

JobManager::JobManager(ServerEnv* env) : env_(env) {}

JobManager::~JobManager() { Stop(); }

std::string JobManager::JobDir(const std::string& id) const {
  return absl::StrCat(env_->options.data_dir, "/jobs/", id);
}

void JobManager::Start() {
  Recover();
  runner_ = std::thread([this] { RunnerLoop(); });
}

void JobManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.exchange(true)) {
      // already stopping; still join below if needed
    }
    stop_run_ = true;
  }
  runner_cv_.notify_all();
  events_cv_.notify_all();
  if (runner_.joinable()) runner_.join();
}

absl::Status JobManager::SaveLocked(v1::TuningJob& job) {
  SetTimestamp(absl::Now(), job.mutable_update_time());
  job.set_etag(RandomHex(12));
  store::Record r;
  r.id = job.name().substr(std::string("tuningJobs/").size());
  r.state = v1::TuningJob::State_Name(job.state());
  r.create_time_us = absl::ToUnixMicros(FromProto(job.create_time()));
  r.data = job.SerializeAsString();
  // Keep the idempotency key: it lives only in the store column.
  auto prior = env_->store->Get(store::Kind::kJob, r.id);
  if (prior.ok()) r.request_id = prior->request_id;
  return env_->store->Put(store::Kind::kJob, r);
}

absl::StatusOr<int64_t> JobManager::Emit(const std::string& job_id, v1::TuningJobEvent event) {
  event.set_job("tuningJobs/" + job_id);
  SetTimestamp(absl::Now(), event.mutable_create_time());
  if (event.level() == v1::TuningJobEvent::LEVEL_UNSPECIFIED) {
    event.set_level(v1::TuningJobEvent::INFO);
  }
  auto id = env_->store->AppendEvent(job_id, [&](int64_t id) {
    event.set_id(id);
    return event.SerializeAsString();
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++event_seq_;
  }
  events_cv_.notify_all();
  if (env_->logger) {
    env_->logger->Info("job event", {{"job_id", job_id},
                                     {"type", v1::TuningJobEvent::Type_Name(event.type())},
                                     {"message", event.message()}});
  }
  return id;
}

absl::StatusOr<int64_t> JobManager::EmitState(const v1::TuningJob& job,
                                              const std::string& message) {
  v1::TuningJobEvent ev;
  ev.set_type(v1::TuningJobEvent::STATE_CHANGED);
  ev.set_state(job.state());
  ev.set_message(message);
  if (job.state() == v1::TuningJob::FAILED) ev.set_level(v1::TuningJobEvent::ERROR);
  *ev.mutable_tuning_job() = job;
  RefreshGauges();
  return Emit(job.name().substr(std::string("tuningJobs/").size()), ev);
}

void JobManager::RefreshGauges() {
  if (!env_->metrics) return;
  for (const char* state : {"QUEUED", "RUNNING", "CANCELLING"}) {
    auto n = env_->store->Count(store::Kind::kJob, {state});
    if (n.ok()) {
      env_->metrics->tuning_jobs->WithLabels({absl::AsciiStrToLower(state)}).Set(*n);
    }
  }
}

void JobManager::WaitForEvents(const std::string& job_id, int64_t after_id,
                               absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  int64_t seen = event_seq_;
  lock.unlock();
  // The store is the truth; the sequence number only avoids busy polling.
  auto existing = env_->store->ListEvents(job_id, after_id, 1);
  if (existing.ok() && !existing->empty()) return;
  lock.lock();
  events_cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return event_seq_ != seen || stopping_.load(); });
}

absl::StatusOr<v1::TuningJob> JobManager::Get(const std::string& id) {
  auto r = env_->store->Get(store::Kind::kJob, id);
  if (!r.ok()) {
    if (r.status().code() == absl::StatusCode::kNotFound)
      return NotFound(kType, "tuningJobs/" + id);
    return r.status();
  }
  v1::TuningJob job;
  if (!job.ParseFromString(r->data)) return absl::DataLossError("corrupt job record " + id);
  return job;
}

absl::StatusOr<v1::TuningJob> JobManager::Create(const v1::CreateTuningJobRequest& req) {
  const Limits& limits = env_->options.limits;
  if (!req.request_id().empty()) {
    ASSIGN_OR_RETURN(auto prior, env_->store->FindByRequestId(store::Kind::kJob, req.request_id()));
    if (prior.has_value()) {
      v1::TuningJob job;
      if (!job.ParseFromString(prior->data)) return absl::DataLossError("corrupt job record");
      return job;
    }
  }
  std::string id = req.tuning_job_id().empty() ? "job-" + RandomHex(10) : req.tuning_job_id();
  RETURN_IF_ERROR(ValidateId(id, "tuning_job_id"));
  std::string out_id = req.output_prompt_set_id().empty() ? id : req.output_prompt_set_id();
  RETURN_IF_ERROR(ValidateId(out_id, "output_prompt_set_id"));
  const v1::TuningJob& in = req.tuning_job();
  if (in.dataset().empty()) {
    return InvalidArgument("MISSING_FIELD", "tuning_job.dataset is required", "tuning_job.dataset");
  }
  if (static_cast<int>(in.display_name().size()) > limits.max_name_length) {
    return InvalidArgument("NAME_TOO_LONG", "display_name is too long", "tuning_job.display_name");
  }
  ASSIGN_OR_RETURN(std::string ds_id, ParseName(in.dataset(), "datasets", "tuning_job.dataset"));
  ASSIGN_OR_RETURN(v1::Dataset ds, FetchDataset(env_, ds_id));
  RETURN_IF_ERROR(ValidateHyperparameters(in.hyperparameters(), ds.stats().max_shots()));
  if (!in.base_prompt_set().empty()) {
    return MakeError(absl::StatusCode::kUnimplemented, "WARM_START_UNSUPPORTED",
                     "base_prompt_set (warm start) is not supported by this server");
  }
  if (env_->prompt_sets->Get(out_id).ok()) {
    ErrorDetail d;
    d.resource_type = "provp.v1.PromptSet";
    d.resource_name = "promptSets/" + out_id;
    return MakeError(
        absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
        absl::StrCat("promptSets/", out_id, " already exists; set output_prompt_set_id"), d);
  }
  std::lock_guard<std::mutex> lock(job_mu_);
  if (env_->store->Get(store::Kind::kJob, id).ok()) {
    ErrorDetail d;
    d.resource_type = kType;
    d.resource_name = "tuningJobs/" + id;
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                     absl::StrCat("tuningJobs/", id, " already exists"), d);
  }
  ASSIGN_OR_RETURN(int64_t total, env_->store->Count(store::Kind::kJob, {}));
  if (total >= limits.max_jobs) {
    return ResourceExhausted(
        "TOO_MANY_JOBS", "max_jobs",
        absl::StrCat("the server holds its limit of ", limits.max_jobs, " jobs; delete old ones"));
  }
  ASSIGN_OR_RETURN(int64_t queued, env_->store->Count(store::Kind::kJob, {"QUEUED"}));
  if (queued >= limits.max_queued_jobs) {
    return ResourceExhausted(
        "JOB_QUEUE_FULL", "max_queued_jobs",
        absl::StrCat(queued, " jobs are queued (limit ", limits.max_queued_jobs, "); retry later"),
        /*retry_after_ms=*/60000);
  }
  v1::TuningJob job = in;
  job.set_name("tuningJobs/" + id);
  job.set_state(v1::TuningJob::QUEUED);
  job.clear_progress();
  job.clear_result();
  job.clear_error();
  job.set_output_prompt_set_id(out_id);
  job.set_restart_count(0);
  absl::Time now = absl::Now();
  SetTimestamp(now, job.mutable_create_time());
  job.clear_start_time();
  job.clear_end_time();
  SetTimestamp(now, job.mutable_update_time());
  job.set_etag(RandomHex(12));
  store::Record r{id, "QUEUED", req.request_id(), absl::ToUnixMicros(now), job.SerializeAsString()};
  absl::Status s = env_->store->Insert(store::Kind::kJob, r);
  if (s.code() == absl::StatusCode::kAlreadyExists) {
    ErrorDetail d;
    d.resource_type = kType;
    d.resource_name = job.name();
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_EXISTS",
                     absl::StrCat(job.name(), " already exists"), d);
  }
  RETURN_IF_ERROR(s);
  (void)EmitState(job, "job created");
  runner_cv_.notify_all();
  return job;
}

absl::StatusOr<v1::TuningJob> JobManager::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(job_mu_);
  ASSIGN_OR_RETURN(v1::TuningJob job, Get(id));
  if (IsTerminal(job.state())) {
    return FailedPrecondition(
        "JOB_TERMINAL", job.name(),
        absl::StrCat(job.name(), " is already ", v1::TuningJob::State_Name(job.state())));
  }
  if (job.state() == v1::TuningJob::CANCELLING) return job;
  if (job.state() == v1::TuningJob::QUEUED) {
    job.set_state(v1::TuningJob::CANCELLED);
    SetTimestamp(absl::Now(), job.mutable_end_time());
    *job.mutable_error() =
        ToRpcStatus(MakeError(absl::StatusCode::kCancelled, "CANCELLED", "cancelled by user"));
    RETURN_IF_ERROR(SaveLocked(job));
    (void)EmitState(job, "cancelled while queued");
    if (env_->metrics) {
      env_->metrics->tuning_finished->WithLabels({"cancelled"}).Increment();
    }
    return job;
  }
  // RUNNING: the runner sees the flag at the next step.
  job.set_state(v1::TuningJob::CANCELLING);
  RETURN_IF_ERROR(SaveLocked(job));
  (void)EmitState(job, "cancel requested");
  {
    std::lock_guard<std::mutex> l(mu_);
    if (running_id_ == id) {
      cancel_requested_ = true;
      stop_run_ = true;
    }
  }
  return job;
}

void JobManager::Recover() {
  store::ListOptions o;
  o.states = {"RUNNING", "CANCELLING"};
  auto records = env_->store->List(store::Kind::kJob, o);
  if (!records.ok()) {
    env_->logger->Error("job recovery failed", {{"error", records.status().ToString()}});
    return;
  }
  std::lock_guard<std::mutex> lock(job_mu_);
  for (const auto& r : *records) {
    v1::TuningJob job;
    if (!job.ParseFromString(r.data)) continue;
    if (job.state() == v1::TuningJob::CANCELLING) {
      job.set_state(v1::TuningJob::CANCELLED);
      SetTimestamp(absl::Now(), job.mutable_end_time());
      (void)SaveLocked(job);
      (void)EmitState(job, "cancelled (server restarted while cancelling)");
      continue;
    }
    std::error_code ec;
    bool has_checkpoint = fs::exists(JobDir(r.id) + "/checkpoint.safetensors", ec);
    job.set_state(v1::TuningJob::QUEUED);
    job.set_restart_count(job.restart_count() + 1);
    (void)SaveLocked(job);
    v1::TuningJobEvent ev;
    ev.set_type(v1::TuningJobEvent::SERVER_RESTARTED);
    ev.set_level(v1::TuningJobEvent::WARNING);
    ev.set_state(v1::TuningJob::QUEUED);
    ev.set_message(has_checkpoint
                       ? absl::StrCat("server restarted while the job was running; it resumes "
                                      "from its last epoch checkpoint (after epoch ",
                                      job.progress().epoch(), ")")
                       : "server restarted while the job was running; no checkpoint was "
                         "written yet, so it restarts from epoch 0");
    (void)Emit(r.id, ev);
  }
  RefreshGauges();
}

void JobManager::RunnerLoop() {
  while (!stopping_.load()) {
    std::string next;
    {
      store::ListOptions o;
      o.states = {"QUEUED"};
      o.order = store::ListOptions::Order::kOldestFirst;
      o.limit = 1;
      auto records = env_->store->List(store::Kind::kJob, o);
      if (records.ok() && !records->empty()) next = (*records)[0].id;
    }
    if (next.empty()) {
      std::unique_lock<std::mutex> lock(mu_);
      runner_cv_.wait_for(lock, std::chrono::milliseconds(500));
      continue;
    }
    RunJob(next);
  }
}

void JobManager::RunJob(const std::string& id) {
  v1::TuningJob job;
  {
    std::lock_guard<std::mutex> lock(job_mu_);
    auto j = Get(id);
    if (!j.ok() || j->state() != v1::TuningJob::QUEUED) return;
    job = *j;
    job.set_state(v1::TuningJob::RUNNING);
    absl::Time now = absl::Now();
    if (!job.has_start_time()) {
      SetTimestamp(now, job.mutable_start_time());
      if (env_->metrics) {
        env_->metrics->tuning_queue_wait->Observe(
            absl::ToDoubleSeconds(now - FromProto(job.create_time())));
      }
    }
    if (!SaveLocked(job).ok()) return;
    std::lock_guard<std::mutex> l(mu_);
    running_id_ = id;
    cancel_requested_ = false;
    stop_run_ = stopping_.load();
  }
  if (env_->metrics) {
  }
  (void)EmitState(job, "training started");
  const absl::Time run_start = absl::Now();

  auto run = [&]() -> absl::StatusOr<engine::TuningOutcome> {
    ASSIGN_OR_RETURN(std::string ds_id, ParseName(job.dataset(), "datasets", "dataset"));
    auto ds = FetchDataset(env_, ds_id);
    if (!ds.ok()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "DATASET_MISSING",
                       absl::StrCat(job.dataset(), " no longer exists"));
    }
    data::LoadOptions lo;
    lo.check_files = true;
    auto manifest = data::LoadManifest(DatasetManifestPath(env_->options, ds_id), lo);
    if (!manifest.ok()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "DATASET_MISSING",
                       absl::StrCat("dataset files: ", manifest.status().message()));
    }
    engine::TuningSpec spec;
    spec.job_id = id;
    spec.class_names = manifest->class_names;
    std::set<std::string> novel(ds->novel_class_names().begin(), ds->novel_class_names().end());
    for (size_t c = 0; c < spec.class_names.size(); ++c) {
      if (novel.count(spec.class_names[c])) spec.novel_classes.push_back(static_cast<int>(c));
    }
    for (auto [split, es] : {std::pair{data::Split::kTrain, engine::Split::kTrain},
                             std::pair{data::Split::kVal, engine::Split::kVal},
                             std::pair{data::Split::kTest, engine::Split::kTest}}) {
      for (const auto& it : manifest->items(split)) spec.items.push_back({it.path, it.label, es});
    }
    const int64_t max_pixels = env_->options.limits.max_pixels_per_image;
    spec.load_image =
        [max_pixels](const engine::TuningItem& item) -> absl::StatusOr<engine::Image> {
      image::DecodeOptions o;
      o.max_pixels = max_pixels;
      ASSIGN_OR_RETURN(image::RgbImage rgb, image::DecodeImageFile(item.path, o));
      return engine::Image{rgb.height, rgb.width, std::move(rgb.pixels)};
    };
    const v1::Hyperparameters& hp = job.hyperparameters();
    spec.shots = hp.shots();
    spec.num_prompts = hp.num_prompts();
    spec.epochs = hp.epochs();
    spec.learning_rate = hp.learning_rate();
    spec.batch_size = hp.batch_size();
    spec.seed = hp.seed() == 0 ? 1 : hp.seed();
    spec.variant = hp.variant();
    spec.preset = hp.preset();
    if (hp.has_use_feature_reformation())
      spec.use_feature_reformation = hp.use_feature_reformation();
    if (hp.has_alpha()) spec.alpha = hp.alpha();
    if (hp.has_ref_lambda()) spec.ref_lambda = hp.ref_lambda();
    if (hp.has_weight_decay()) spec.weight_decay = hp.weight_decay();
    if (hp.has_min_crop_scale()) spec.min_crop_scale = hp.min_crop_scale();
    std::error_code ec;
    fs::create_directories(JobDir(id), ec);
    spec.checkpoint_path = JobDir(id) + "/checkpoint.safetensors";
    spec.output_path = JobDir(id) + "/result.pset";

    absl::Time last_save = absl::InfinitePast();
    absl::Time epoch_start = absl::Now();
    engine::TuningCallbacks cb;
    cb.stop = &stop_run_;
    cb.on_message = [&](const std::string& msg) {
      v1::TuningJobEvent ev;
      ev.set_type(v1::TuningJobEvent::MESSAGE);
      ev.set_message(msg);
      (void)Emit(id, ev);
    };
    cb.on_progress = [&](const engine::TuningProgress& p) {
      absl::Time now = absl::Now();
      if (!p.epoch_end && now - last_save < absl::Seconds(1)) return;
      last_save = now;
      v1::TrainingMetrics m;
      m.set_epoch(p.epoch);
      m.set_total_epochs(p.total_epochs);
      m.set_step(p.step);
      m.set_total_steps(p.total_steps);
      m.set_learning_rate(p.learning_rate);
      m.set_loss(p.loss);
      m.set_loss_xe(p.loss_xe);
      m.set_loss_ref(p.loss_ref);
      m.set_train_accuracy(p.train_accuracy);
      m.set_images_per_second(p.images_per_second);
      m.set_eta_seconds(p.eta_seconds);
      {
        std::lock_guard<std::mutex> lock(job_mu_);
        auto cur = Get(id);
        if (cur.ok()) {
          v1::Progress* pr = cur->mutable_progress();
          pr->set_epoch(p.epoch_end ? p.epoch : p.epoch - 1);
          pr->set_total_epochs(p.total_epochs);
          pr->set_step(p.step);
          pr->set_total_steps(p.total_steps);
          pr->set_fraction(p.total_steps > 0 ? static_cast<double>(p.step) / p.total_steps : 0);
          SetTimestamp(now + absl::Seconds(p.eta_seconds), pr->mutable_estimated_finish_time());
          auto& lm = *pr->mutable_last_metrics();
          lm["loss"] = p.loss;
          lm["loss_xe"] = p.loss_xe;
          lm["loss_ref"] = p.loss_ref;
          lm["lr"] = p.learning_rate;
          lm["train_accuracy"] = p.train_accuracy;
          lm["images_per_second"] = p.images_per_second;
          (void)SaveLocked(*cur);
          job = *cur;
        }
      }
      v1::TuningJobEvent ev;
      ev.set_type(p.epoch_end ? v1::TuningJobEvent::CHECKPOINT : v1::TuningJobEvent::METRICS);
      ev.set_message(
          p.epoch_end
              ? absl::StrCat("epoch ", p.epoch, "/", p.total_epochs, " done; checkpoint written")
              : absl::StrCat("epoch ", p.epoch, " step ", p.step, "/", p.total_steps));
      *ev.mutable_metrics() = m;
      (void)Emit(id, ev);
      if (env_->metrics) {
        env_->metrics->tuning_progress->Set(
            p.total_steps > 0 ? static_cast<double>(p.step) / p.total_steps : 0);
        env_->metrics->tuning_loss->Set(p.loss);
        if (p.epoch_end) {
          env_->metrics->tuning_epoch_duration->Observe(absl::ToDoubleSeconds(now - epoch_start));
          epoch_start = now;
        }
      }
    };
    return env_->engine->RunTuning(spec, cb);
  };

  absl::StatusOr<engine::TuningOutcome> outcome = run();
  bool cancel_requested, shutting_down;
  {
    std::lock_guard<std::mutex> l(mu_);
    cancel_requested = cancel_requested_;
    shutting_down = stopping_.load();
    running_id_.clear();
  }
  std::lock_guard<std::mutex> lock(job_mu_);
  auto cur = Get(id);
  if (cur.ok()) job = *cur;
  const std::string final_label = [&]() -> std::string {
    if (outcome.ok()) {
      // Publish the prompt set.
      std::error_code ec;
      const std::string out_id = job.output_prompt_set_id();
      fs::rename(JobDir(id) + "/result.pset", env_->prompt_sets->PathFor(out_id), ec);
      v1::PromptSet ps;
      ps.set_display_name(job.display_name());
      ps.set_dataset(job.dataset());
      ps.set_source_tuning_job(job.name());
      for (const auto& n : outcome->prompt_set.base_class_names) ps.add_base_class_names(n);
      for (const auto& n : outcome->prompt_set.novel_class_names) ps.add_novel_class_names(n);
      for (const auto& t : outcome->prompt_set.templates) ps.add_templates(t);
      const engine::TuningEvaluation& e = outcome->evaluation;
      v1::Evaluation* ev = ps.mutable_evaluation();
      ev->set_base_accuracy(e.base_accuracy);
      ev->set_novel_accuracy(e.novel_accuracy);
      ev->set_harmonic_mean(e.harmonic_mean);
      ev->set_num_base_images(e.num_base_images);
      ev->set_num_novel_images(e.num_novel_images);
      ev->set_zero_shot_base_accuracy(e.zero_shot_base_accuracy);
      ev->set_zero_shot_novel_accuracy(e.zero_shot_novel_accuracy);
      for (const auto& c : e.per_class) {
        auto* pc = ev->add_per_class_accuracy();
        pc->set_class_name(c.class_name);
        pc->set_accuracy(c.accuracy);
        pc->set_num_images(c.num_images);
        pc->set_novel(c.novel);
      }
      absl::StatusOr<v1::PromptSet> registered =
          ec ? absl::StatusOr<v1::PromptSet>(absl::InternalError("moving result: " + ec.message()))
             : env_->prompt_sets->Register(ps, out_id, env_->options.auto_load_prompt_sets);
      if (!registered.ok() && registered.status().code() != absl::StatusCode::kAlreadyExists &&
          !env_->prompt_sets->Get(out_id).ok()) {
        job.set_state(v1::TuningJob::FAILED);
        *job.mutable_error() = ToRpcStatus(WithReason(registered.status(), "PUBLISH_FAILED"));
        return "failed";
      }
      job.set_state(v1::TuningJob::SUCCEEDED);
      job.mutable_result()->set_prompt_set("promptSets/" + out_id);
      *job.mutable_result()->mutable_evaluation() = *ev;
      job.mutable_progress()->set_fraction(1.0);
      job.mutable_progress()->set_epoch(outcome->epochs_completed);
      return "succeeded";
    }
    if (cancel_requested) {
      job.set_state(v1::TuningJob::CANCELLED);
      *job.mutable_error() =
          ToRpcStatus(MakeError(absl::StatusCode::kCancelled, "CANCELLED", "cancelled by user"));
      return "cancelled";
    }
    if (shutting_down) return "";
    job.set_state(v1::TuningJob::FAILED);
    absl::Status err = outcome.status();
    *job.mutable_error() = ToRpcStatus(WithReason(err, "TRAINING_FAILED"));
    return "failed";
  }();
  if (final_label.empty()) {
    // Graceful shutdown: back to QUEUED; the next start resumes it.
    job.set_state(v1::TuningJob::QUEUED);
    (void)SaveLocked(job);
    v1::TuningJobEvent ev;
    ev.set_type(v1::TuningJobEvent::STATE_CHANGED);
    ev.set_state(v1::TuningJob::QUEUED);
    ev.set_level(v1::TuningJobEvent::WARNING);
    ev.set_message(
        "server shutting down; the job resumes from its last epoch checkpoint on the "
        "next start");
    (void)Emit(id, ev);
    return;
  }
  SetTimestamp(absl::Now(), job.mutable_end_time());
  (void)SaveLocked(job);
  (void)EmitState(job, absl::StrCat("job ", final_label));
  if (env_->metrics) {
    env_->metrics->tuning_finished->WithLabels({final_label}).Increment();
    if (final_label == "failed") {
      env_->metrics->tuning_failures
          ->WithLabels({GoCodeName(static_cast<absl::StatusCode>(job.error().code()))})
          .Increment();
    }
    env_->metrics->tuning_job_duration->Observe(absl::ToDoubleSeconds(absl::Now() - run_start));
    env_->metrics->tuning_progress->Set(0);
  }
  if (env_->logger) {
    env_->logger->Info("job finished", {{"job_id", id}, {"state", final_label}});
  }
}

}  // namespace provp::server
