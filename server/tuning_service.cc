// Implementation of tuning_service.h.
#include "server/tuning_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/status_macros.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.TuningService";

bool IsTerminalEvent(const v1::TuningJobEvent& ev) {
  return ev.type() == v1::TuningJobEvent::STATE_CHANGED && JobManager::IsTerminal(ev.state());
}

void BasicView(v1::TuningJob* job) {
  job->mutable_result()->mutable_evaluation()->clear_per_class_accuracy();
  job->mutable_progress()->clear_last_metrics();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseStateFilter(const std::string& filter) {
  std::vector<std::string> states;
  std::string f(absl::StripAsciiWhitespace(filter));
  if (f.empty()) return states;
  for (absl::string_view term : absl::StrSplit(f, " OR ")) {
    term = absl::StripAsciiWhitespace(term);
    std::vector<absl::string_view> kv = absl::StrSplit(term, '=');
    v1::TuningJob::State s;
    if (kv.size() != 2 || absl::StripAsciiWhitespace(kv[0]) != "state" ||
        !v1::TuningJob::State_Parse(std::string(absl::StripAsciiWhitespace(kv[1])), &s)) {
      return InvalidArgument(
          "INVALID_FILTER",
          absl::StrCat("filter term '", term, "' is not 'state=<QUEUED|RUNNING|...>'"), "filter");
    }
    states.push_back(v1::TuningJob::State_Name(s));
  }
  return states;
}

grpc::Status TuningServiceImpl::CreateTuningJob(grpc::ServerContext* ctx,
                                                const v1::CreateTuningJobRequest* req,
                                                v1::TuningJob* resp) {
  Rpc rpc(*env_, ctx, kService, "CreateTuningJob", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, env_->jobs->Create(*req));
    return absl::OkStatus();
  });
}

grpc::Status TuningServiceImpl::GetTuningJob(grpc::ServerContext* ctx,
                                             const v1::GetTuningJobRequest* req,
                                             v1::TuningJob* resp) {
  Rpc rpc(*env_, ctx, kService, "GetTuningJob", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "tuningJobs", "name"));
    ASSIGN_OR_RETURN(*resp, env_->jobs->Get(id));
    return absl::OkStatus();
  });
}

grpc::Status TuningServiceImpl::ListTuningJobs(grpc::ServerContext* ctx,
                                               const v1::ListTuningJobsRequest* req,
                                               v1::ListTuningJobsResponse* resp) {
  Rpc rpc(*env_, ctx, kService, "ListTuningJobs", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(int64_t offset, ParsePageToken(req->page_token()));
    ASSIGN_OR_RETURN(auto states, ParseStateFilter(req->filter()));
    int64_t size = ClampPageSize(req->page_size(), 50);
    store::ListOptions o;
    o.offset = offset;
    o.limit = size + 1;
    o.states = states;
    o.order = store::ListOptions::Order::kNewestFirst;
    ASSIGN_OR_RETURN(auto records, env_->store->List(store::Kind::kJob, o));
    for (size_t i = 0; i < records.size() && static_cast<int64_t>(i) < size; ++i) {
      v1::TuningJob* job = resp->add_tuning_jobs();
      job->ParseFromString(records[i].data);
      if (req->view() != v1::FULL) BasicView(job);
    }
    if (static_cast<int64_t>(records.size()) > size) {
      resp->set_next_page_token(absl::StrCat(offset + size));
    }
    return absl::OkStatus();
  });
}

grpc::Status TuningServiceImpl::CancelTuningJob(grpc::ServerContext* ctx,
                                                const v1::CancelTuningJobRequest* req,
                                                v1::TuningJob* resp) {
  Rpc rpc(*env_, ctx, kService, "CancelTuningJob", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "tuningJobs", "name"));
    ASSIGN_OR_RETURN(*resp, env_->jobs->Cancel(id));
    return absl::OkStatus();
  });
}

grpc::Status TuningServiceImpl::WatchTuningJob(grpc::ServerContext* ctx,
                                               const v1::WatchTuningJobRequest* req,
                                               grpc::ServerWriter<v1::TuningJobEvent>* writer) {
  Rpc rpc(*env_, ctx, kService, "WatchTuningJob", "server_stream", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "tuningJobs", "name"));
    if (req->after_event_id() < 0) {
      return InvalidArgument("INVALID_ARGUMENT", "after_event_id must be >= 0", "after_event_id");
    }
    ASSIGN_OR_RETURN(v1::TuningJob job, env_->jobs->Get(id));
    v1::TuningJobEvent snapshot;
    snapshot.set_type(v1::TuningJobEvent::SNAPSHOT);
    snapshot.set_job(job.name());
    snapshot.set_state(job.state());
    snapshot.set_level(v1::TuningJobEvent::INFO);
    SetTimestamp(absl::Now(), snapshot.mutable_create_time());
    *snapshot.mutable_tuning_job() = job;
    if (!writer->Write(snapshot)) return absl::OkStatus();
    int64_t last = req->after_event_id();
    const absl::Duration heartbeat = absl::Seconds(env_->options.watch_heartbeat_seconds);
    absl::Time last_sent = absl::Now();
    while (true) {
      ASSIGN_OR_RETURN(auto events, env_->store->ListEvents(id, last, 100));
      for (const auto& e : events) {
        v1::TuningJobEvent ev;
        if (!ev.ParseFromString(e.data)) continue;
        last = e.id;
        if (!writer->Write(ev)) return absl::OkStatus();
        last_sent = absl::Now();
        if (IsTerminalEvent(ev)) return absl::OkStatus();
      }
      if (!events.empty()) continue;
      ASSIGN_OR_RETURN(job, env_->jobs->Get(id));
      if (JobManager::IsTerminal(job.state())) return absl::OkStatus();
      if (ctx->IsCancelled()) {
        return MakeError(absl::StatusCode::kCancelled, "CANCELLED", "client cancelled the watch");
      }
      if (env_->draining.load() || env_->jobs->stopping()) {
        ErrorDetail d;
        d.retry_after_ms = 1000;
        return MakeError(absl::StatusCode::kUnavailable, "DRAINING",
                         absl::StrCat("server is shutting down; resume with after_event_id=", last),
                         d);
      }
      if (absl::Now() > rpc.deadline()) {
        return MakeError(absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED",
                         "watch deadline reached");
      }
      if (absl::Now() - last_sent >= heartbeat) {
        v1::TuningJobEvent hb;
        hb.set_type(v1::TuningJobEvent::HEARTBEAT);
        hb.set_job(job.name());
        hb.set_state(job.state());
        SetTimestamp(absl::Now(), hb.mutable_create_time());
        if (!writer->Write(hb)) return absl::OkStatus();
        last_sent = absl::Now();
      }
      env_->jobs->WaitForEvents(id, last, std::min(heartbeat, absl::Milliseconds(500)));
    }
  });
}

grpc::Status TuningServiceImpl::ListTuningJobEvents(grpc::ServerContext* ctx,
                                                    const v1::ListTuningJobEventsRequest* req,
                                                    v1::ListTuningJobEventsResponse* resp) {
  Rpc rpc(*env_, ctx, kService, "ListTuningJobEvents", "unary", Scope::kAdmin);
  return Handle(rpc, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), "tuningJobs", "name"));
    ASSIGN_OR_RETURN(v1::TuningJob job, env_->jobs->Get(id));
    // The page token is the id of the last event returned.
    ASSIGN_OR_RETURN(int64_t after, ParsePageToken(req->page_token()));
    int64_t size = ClampPageSize(req->page_size(), 100);
    ASSIGN_OR_RETURN(auto events, env_->store->ListEvents(id, after, size + 1));
    for (size_t i = 0; i < events.size() && static_cast<int64_t>(i) < size; ++i) {
      resp->add_events()->ParseFromString(events[i].data);
    }
    if (static_cast<int64_t>(events.size()) > size) {
      resp->set_next_page_token(absl::StrCat(events[size - 1].id));
    }
    return absl::OkStatus();
  });
}

}  // namespace provp::server
