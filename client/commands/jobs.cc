// `provp tune` (create a tuning job and follow it live) and
// `provp jobs list|get|cancel|delete|watch|events`. Watching resumes after a dropped
// connection from the last event id it saw, so no progress event is missed
// or shown twice.
#include <chrono>
#include <cmath>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands/command.h"
#include "client/progress.h"
#include "core/train/hyperparameters.h"
#include "provp/v1/tuning.grpc.pb.h"
#include "server/state/job_states.h"

namespace provp::client {
namespace {

using provp::v1::TuningJob;
using provp::v1::TuningJobEvent;

// The server's one definition (header-only, proto types only).
using provp::server::IsTerminal;

std::string FormatEta(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const int s = static_cast<int>(seconds + 0.5);
  return s >= 60 ? absl::StrFormat("%dm%02ds", s / 60, s % 60) : absl::StrFormat("%ds", s);
}

void PrintJobLine(const TuningJob& j) {
  std::printf("%s  %s  dataset=%s  shots=%d  epoch %d/%d", j.name().c_str(),
              TuningJob::State_Name(j.state()).c_str(), j.dataset().c_str(),
              j.hyperparameters().shots(), j.progress().epoch(), j.progress().total_epochs());
  if (!j.result().prompt_set().empty()) std::printf("  -> %s", j.result().prompt_set().c_str());
  if (j.state() == TuningJob::FAILED) std::printf("  error: %s", j.error().message().c_str());
  std::printf("\n");
}

void PrintResult(const TuningJob& j) {
  PrintJobLine(j);
  if (j.state() != TuningJob::SUCCEEDED) return;
  const auto& e = j.result().evaluation();
  std::printf("  prompt set       %s\n", j.result().prompt_set().c_str());
  const auto& hp = j.hyperparameters();
  std::printf(
      "  ran with         preset %s, variant %s, %d shots, %d epochs, learning rate %g, "
      "seed %lld, selection %s (epoch %d)\n",
      hp.preset().c_str(), hp.variant().c_str(), hp.shots(), hp.epochs(), hp.learning_rate(),
      static_cast<long long>(hp.seed()), hp.selection().c_str(), j.result().selected_epoch());
  std::printf("  base accuracy    %6.2f%%  (zero-shot %6.2f%%, %lld images)\n",
              100 * e.base_accuracy(), 100 * e.zero_shot_base_accuracy(),
              static_cast<long long>(e.num_base_images()));
  if (e.num_novel_images() > 0) {
    std::printf("  novel accuracy   %6.2f%%  (zero-shot %6.2f%%, %lld images)\n",
                100 * e.novel_accuracy(), 100 * e.zero_shot_novel_accuracy(),
                static_cast<long long>(e.num_novel_images()));
    std::printf("  harmonic mean    %6.2f%%\n", 100 * e.harmonic_mean());
  }
}

// Follows a job until it ends. Returns the final job (or nullopt after
// reporting a failure). Reconnects on UNAVAILABLE for up to `retry_seconds`.
std::optional<TuningJob> Follow(Cli& cli, Connection& conn, const std::string& name,
                                int64_t after_event_id, double retry_seconds) {
  auto stub = provp::v1::TuningService::NewStub(conn.channel());
  ProgressBar bar;
  int64_t last_id = after_event_id;
  TuningJob job;
  auto disconnected_since = std::chrono::steady_clock::time_point::min();
  for (;;) {
    provp::v1::WatchTuningJobRequest req;
    req.set_name(name);
    req.set_after_event_id(last_id);
    auto ctx = conn.NewContext(/*with_deadline=*/false);
    auto reader = stub->WatchTuningJob(ctx.get(), req);
    TuningJobEvent ev;
    while (reader->Read(&ev)) {
      disconnected_since = std::chrono::steady_clock::time_point::min();
      if (ev.id() > last_id) last_id = ev.id();
      if (ev.has_tuning_job()) job = ev.tuning_job();
      if (cli.json) {
        PrintJson(ev);
        continue;
      }
      switch (ev.type()) {
        case TuningJobEvent::METRICS: {
          const auto& m = ev.metrics();
          const double frac =
              m.total_steps() > 0 ? static_cast<double>(m.step()) / m.total_steps() : 0;
          bar.Update(
              frac,
              absl::StrFormat(
                  "epoch %d/%d  loss %.4f (ce %.4f ref %.4f)  acc %.1f%%  %.0f img/s  ETA %s",
                  m.epoch(), m.total_epochs(), m.loss(), m.loss_xe(), m.loss_ref(),
                  100 * m.train_accuracy(), m.images_per_second(), FormatEta(m.eta_seconds())));
          break;
        }
        case TuningJobEvent::HEARTBEAT:
        case TuningJobEvent::SNAPSHOT:
          break;
        default:
          bar.Finish();
          std::fprintf(stderr, "%s\n", ev.message().c_str());
      }
      if (ev.has_tuning_job()) job = ev.tuning_job();
      if (ev.type() == TuningJobEvent::STATE_CHANGED) job.set_state(ev.state());
    }
    grpc::Status st = reader->Finish();
    if (st.ok() && IsTerminal(job.state())) {
      bar.Finish();
      // The stream's last snapshot may predate the result: fetch the job.
      provp::v1::GetTuningJobRequest get;
      get.set_name(name);
      auto gctx = conn.NewContext();
      TuningJob final_job;
      if (stub->GetTuningJob(gctx.get(), get, &final_job).ok()) job = final_job;
      return job;
    }
    if (st.ok() || st.error_code() == grpc::UNAVAILABLE || st.error_code() == grpc::INTERNAL) {
      // Dropped connection (or server restart): resume after last_id.
      const auto now = std::chrono::steady_clock::now();
      if (disconnected_since == std::chrono::steady_clock::time_point::min()) {
        disconnected_since = now;
        bar.Finish();
        std::fprintf(stderr, "provp: connection lost (%s); resuming after event %lld\n",
                     st.ok() ? "stream ended" : st.error_message().c_str(),
                     static_cast<long long>(last_id));
      } else if (std::chrono::duration<double>(now - disconnected_since).count() > retry_seconds) {
        bar.Finish();
        Fail(cli, "gave up watching " + name + ": " + DescribeStatus(st));
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    bar.Finish();
    Fail(cli, DescribeStatus(st));
    return std::nullopt;
  }
}

struct TuneFlags {
  std::string dataset;
  int shots = 16;
  int epochs = 0;
  double learning_rate = 0;
  int num_prompts = 0;
  int batch_size = 0;
  int64_t seed = 1;
  std::string variant;
  std::string preset;
  std::string id;
  std::string output;
  std::string request_id;
  bool no_ref = false;
  double min_crop_scale = 0;
  std::string selection;
  bool detach = false;
  double retry_seconds = 120;
};

void RunTune(Cli& cli, const TuneFlags& f) {
  auto conn = Connect(cli);
  if (!conn) return;
  auto stub = provp::v1::TuningService::NewStub(conn->channel());
  provp::v1::CreateTuningJobRequest req;
  auto* job = req.mutable_tuning_job();
  job->set_dataset(ResourceName("datasets", f.dataset));
  auto* hp = job->mutable_hyperparameters();
  hp->set_shots(f.shots);
  hp->set_epochs(f.epochs);
  hp->set_learning_rate(f.learning_rate);
  hp->set_num_prompts(f.num_prompts);
  hp->set_batch_size(f.batch_size);
  hp->set_seed(f.seed);
  hp->set_variant(f.variant);
  hp->set_preset(f.preset);
  if (f.no_ref) hp->set_use_feature_reformation(false);
  if (f.min_crop_scale > 0) hp->set_min_crop_scale(f.min_crop_scale);
  hp->set_selection(f.selection);
  req.set_tuning_job_id(f.id);
  req.set_output_prompt_set_id(f.output);
  req.set_request_id(f.request_id);
  TuningJob created;
  auto ctx = conn->NewContext();
  grpc::Status st = stub->CreateTuningJob(ctx.get(), req, &created);
  if (!st.ok()) return Fail(cli, DescribeStatus(st));
  std::fprintf(stderr, "created %s (%s)\n", created.name().c_str(),
               TuningJob::State_Name(created.state()).c_str());
  if (f.detach) {
    if (cli.json)
      PrintJson(created);
    else
      std::printf("%s\n", created.name().c_str());
    return;
  }
  auto final_job = Follow(cli, *conn, created.name(), 0, f.retry_seconds);
  if (!final_job) return;
  if (cli.json)
    PrintJson(*final_job);
  else
    PrintResult(*final_job);
  if (final_job->state() != TuningJob::SUCCEEDED) cli.exit_code = 1;
}

}  // namespace

void AddTuneCommand(CLI::App& app, Cli& cli) {
  auto f = std::make_shared<TuneFlags>();
  auto* cmd = app.add_subcommand("tune", "Create a ProVP-Ref tuning job and follow it live");
  cmd->add_option("--dataset,-d", f->dataset, "Dataset id")->required();
  // Names and caps from core/train/hyperparameters.h, as the server checks.
  cmd->add_option("--shots,-s", f->shots,
                  absl::StrCat("Training images per class (recipes for ",
                               provp::train::JoinedShotLadder(), "; others take the next lower)"));
  cmd->add_option(
      "--epochs", f->epochs,
      absl::StrCat("Epochs, up to ", provp::train::kMaxEpochs, " (default: the preset's)"));
  cmd->add_option("--learning-rate", f->learning_rate,
                  "Peak learning rate (default: the preset's)");
  cmd->add_option("--num-prompts", f->num_prompts, "Prompt tokens per layer");
  cmd->add_option("--batch-size", f->batch_size, "Images per step");
  cmd->add_option("--seed", f->seed, "Seed for sampling, augmentation and init");
  cmd->add_option("--variant", f->variant,
                  provp::train::JoinedVariantNames(/*include_zero_shot=*/false));
  cmd->add_option("--preset", f->preset,
                  absl::StrCat("Named recipe: ", provp::train::JoinedPresetNames(),
                               " (default: base_to_novel with novel classes, else by shots)"));
  cmd->add_option("--selection", f->selection,
                  "Model selection: last (default) or best_val (best VAL-split accuracy)");
  cmd->add_flag("--no-ref", f->no_ref, "Train without the Ref loss");
  cmd->add_option("--min-crop-scale", f->min_crop_scale,
                  "Smallest crop area fraction in augmentation, (0, 1] (default 0.08)")
      ->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--id", f->id, "Job id (default: generated)");
  cmd->add_option("--output-prompt-set", f->output, "Id of the resulting prompt set");
  cmd->add_option("--request-id", f->request_id, "Idempotency key");
  cmd->add_flag("--detach", f->detach, "Print the job name and return without following");
  cmd->add_option("--retry-seconds", f->retry_seconds, "How long to keep reconnecting");
  cmd->callback([&cli, f] { RunTune(cli, *f); });
}

void AddJobsCommand(CLI::App& app, Cli& cli) {
  auto* cmd = app.add_subcommand("jobs", "List, inspect, cancel and watch tuning jobs");
  cmd->require_subcommand(1);

  auto state = std::make_shared<std::string>();
  auto* list = cmd->add_subcommand("list", "List tuning jobs, newest first");
  list->add_option("--state", *state, "Only jobs in this state (e.g. RUNNING)");
  list->callback([&cli, state] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::TuningService::NewStub(conn->channel());
    provp::v1::ListTuningJobsRequest req;
    req.set_page_size(100);
    if (!state->empty()) req.set_filter("state=" + *state);
    do {
      provp::v1::ListTuningJobsResponse resp;
      auto ctx = conn->NewContext();
      grpc::Status st = stub->ListTuningJobs(ctx.get(), req, &resp);
      if (!st.ok()) return Fail(cli, DescribeStatus(st));
      for (const auto& j : resp.tuning_jobs()) cli.json ? PrintJson(j) : PrintJobLine(j);
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
  });

  auto get_id = std::make_shared<std::string>();
  auto* get = cmd->add_subcommand("get", "Show one job");
  get->add_option("id", *get_id, "Job id")->required();
  get->callback([&cli, get_id] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::TuningService::NewStub(conn->channel());
    provp::v1::GetTuningJobRequest req;
    req.set_name(ResourceName("tuningJobs", *get_id));
    TuningJob j;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->GetTuningJob(ctx.get(), req, &j);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    cli.json ? PrintJson(j) : PrintResult(j);
  });

  auto cancel_id = std::make_shared<std::string>();
  auto* cancel = cmd->add_subcommand("cancel", "Cancel a queued or running job");
  cancel->add_option("id", *cancel_id, "Job id")->required();
  cancel->callback([&cli, cancel_id] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::TuningService::NewStub(conn->channel());
    provp::v1::CancelTuningJobRequest req;
    req.set_name(ResourceName("tuningJobs", *cancel_id));
    TuningJob j;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->CancelTuningJob(ctx.get(), req, &j);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    cli.json ? PrintJson(j) : PrintJobLine(j);
  });

  auto delete_id = std::make_shared<std::string>();
  auto* del =
      cmd->add_subcommand("delete", "Delete an ended job and its events (its prompt set stays)");
  del->add_option("id", *delete_id, "Job id")->required();
  del->callback([&cli, delete_id] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::TuningService::NewStub(conn->channel());
    provp::v1::DeleteTuningJobRequest req;
    req.set_name(ResourceName("tuningJobs", *delete_id));
    provp::v1::DeleteTuningJobResponse resp;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->DeleteTuningJob(ctx.get(), req, &resp);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    std::printf("deleted %s\n", req.name().c_str());
  });

  auto watch_id = std::make_shared<std::string>();
  auto after = std::make_shared<int64_t>(0);
  auto retry = std::make_shared<double>(120);
  auto* watch = cmd->add_subcommand("watch", "Follow a job's progress until it ends");
  watch->add_option("id", *watch_id, "Job id")->required();
  watch->add_option("--after-event", *after, "Start after this event id");
  watch->add_option("--retry-seconds", *retry, "How long to keep reconnecting");
  watch->callback([&cli, watch_id, after, retry] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto j = Follow(cli, *conn, ResourceName("tuningJobs", *watch_id), *after, *retry);
    if (!j) return;
    cli.json ? PrintJson(*j) : PrintResult(*j);
    if (j->state() != TuningJob::SUCCEEDED) cli.exit_code = 1;
  });

  auto ev_id = std::make_shared<std::string>();
  auto* events = cmd->add_subcommand("events", "Print a job's event history");
  events->add_option("id", *ev_id, "Job id")->required();
  events->callback([&cli, ev_id] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::TuningService::NewStub(conn->channel());
    provp::v1::ListTuningJobEventsRequest req;
    req.set_name(ResourceName("tuningJobs", *ev_id));
    req.set_page_size(500);
    do {
      provp::v1::ListTuningJobEventsResponse resp;
      auto ctx = conn->NewContext();
      grpc::Status st = stub->ListTuningJobEvents(ctx.get(), req, &resp);
      if (!st.ok()) return Fail(cli, DescribeStatus(st));
      for (const auto& e : resp.events()) {
        if (cli.json) {
          PrintJson(e);
        } else {
          // The trace context of the call that created the job, when it
          // sent one, so a line can be found in the tracing backend.
          std::printf("%6lld  %-16s %s%s%s\n", static_cast<long long>(e.id()),
                      TuningJobEvent::Type_Name(e.type()).c_str(), e.message().c_str(),
                      e.traceparent().empty() ? "" : "  traceparent=", e.traceparent().c_str());
        }
      }
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
  });
}

}  // namespace provp::client
