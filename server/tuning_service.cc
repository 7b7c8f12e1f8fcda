// Implementation of tuning_service.h.
#include "server/tuning_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/util/status_macros.h"
#include "server/state/errors.h"
#include "server/state/job_states.h"
#include "server/state/resource_names.h"
#include "server/state/timestamps.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.TuningService";

bool IsTerminalEvent(const v1::TuningJobEvent& ev) {
  return ev.type() == v1::TuningJobEvent::STATE_CHANGED && IsTerminal(ev.state());
}

void BasicView(v1::TuningJob* job) {
  job->mutable_result()->mutable_evaluation()->clear_per_class_accuracy();
  job->mutable_progress()->clear_last_metrics();
}

}  // namespace

TuningServiceImpl::TuningServiceImpl(RpcEnv env, JobRunner* jobs, absl::Duration heartbeat)
    : RpcService(env, kService), jobs_(jobs), heartbeat_(heartbeat) {
  AddUnary("CreateTuningJob", Scope::kAdmin, &TuningServiceImpl::CreateTuningJob);
  AddUnary("GetTuningJob", Scope::kAdmin, &TuningServiceImpl::GetTuningJob);
  AddUnary("ListTuningJobs", Scope::kAdmin, &TuningServiceImpl::ListTuningJobs);
  AddUnary("CancelTuningJob", Scope::kAdmin, &TuningServiceImpl::CancelTuningJob);
  AddUnary("DeleteTuningJob", Scope::kAdmin, &TuningServiceImpl::DeleteTuningJob);
  AddServerStream("WatchTuningJob", Scope::kAdmin, &TuningServiceImpl::WatchTuningJob);
  AddUnary("ListTuningJobEvents", Scope::kAdmin, &TuningServiceImpl::ListTuningJobEvents);
}

absl::Status TuningServiceImpl::CreateTuningJob(Rpc& rpc, const v1::CreateTuningJobRequest* req,
                                                v1::TuningJob* resp) {
  ASSIGN_OR_RETURN(*resp, jobs_->Create(*req, rpc.traceparent()));
  return absl::OkStatus();
}

absl::Status TuningServiceImpl::GetTuningJob(Rpc& rpc, const v1::GetTuningJobRequest* req,
                                             v1::TuningJob* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kTuningJobs, "name"));
  ASSIGN_OR_RETURN(*resp, jobs_->Get(id));
  return absl::OkStatus();
}

absl::Status TuningServiceImpl::ListTuningJobs(Rpc& rpc, const v1::ListTuningJobsRequest* req,
                                               v1::ListTuningJobsResponse* resp) {
  ASSIGN_OR_RETURN(auto page, jobs_->List(req->page_size(), req->page_token(), req->filter()));
  for (v1::TuningJob& job : page.items) {
    if (req->view() != v1::FULL) BasicView(&job);
    *resp->add_tuning_jobs() = std::move(job);
  }
  resp->set_next_page_token(page.next_page_token);
  return absl::OkStatus();
}

absl::Status TuningServiceImpl::CancelTuningJob(Rpc& rpc, const v1::CancelTuningJobRequest* req,
                                                v1::TuningJob* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kTuningJobs, "name"));
  ASSIGN_OR_RETURN(*resp, jobs_->Cancel(id));
  return absl::OkStatus();
}

absl::Status TuningServiceImpl::DeleteTuningJob(Rpc& rpc, const v1::DeleteTuningJobRequest* req,
                                                v1::DeleteTuningJobResponse* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kTuningJobs, "name"));
  return jobs_->Delete(id);
}

absl::Status TuningServiceImpl::WatchTuningJob(Rpc& rpc, const v1::WatchTuningJobRequest* req,
                                               grpc::ServerWriter<v1::TuningJobEvent>* writer) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kTuningJobs, "name"));
  if (req->after_event_id() < 0) {
    return InvalidArgument("INVALID_ARGUMENT", "after_event_id must be >= 0", "after_event_id");
  }
  ASSIGN_OR_RETURN(v1::TuningJob job, jobs_->Get(id));
  // A failed Write means the client went away; there is no one to tell.
  v1::TuningJobEvent snapshot;
  snapshot.set_type(v1::TuningJobEvent::SNAPSHOT);
  snapshot.set_job(job.name());
  snapshot.set_state(job.state());
  snapshot.set_level(v1::TuningJobEvent::INFO);
  snapshot.set_traceparent(job.traceparent());
  SetTimestamp(absl::Now(), snapshot.mutable_create_time());
  *snapshot.mutable_tuning_job() = job;
  if (!writer->Write(snapshot)) return absl::OkStatus();
  int64_t last = req->after_event_id();
  absl::Time last_sent = absl::Now();
  while (true) {
    ASSIGN_OR_RETURN(auto events, jobs_->ListEvents(id, last, 100));
    for (const v1::TuningJobEvent& ev : events) {
      last = ev.id();
      if (!writer->Write(ev)) return absl::OkStatus();
      last_sent = absl::Now();
      if (IsTerminalEvent(ev)) return absl::OkStatus();
    }
    if (!events.empty()) continue;
    ASSIGN_OR_RETURN(job, jobs_->Get(id));
    if (IsTerminal(job.state())) return absl::OkStatus();
    if (rpc.cancelled()) {
      return MakeError(absl::StatusCode::kCancelled, "CANCELLED", "client cancelled the watch");
    }
    if (env_.draining.load() || jobs_->stopping()) {
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
    if (absl::Now() - last_sent >= heartbeat_) {
      v1::TuningJobEvent hb;
      hb.set_type(v1::TuningJobEvent::HEARTBEAT);
      hb.set_job(job.name());
      hb.set_state(job.state());
      hb.set_traceparent(job.traceparent());
      SetTimestamp(absl::Now(), hb.mutable_create_time());
      if (!writer->Write(hb)) return absl::OkStatus();
      last_sent = absl::Now();
    }
    jobs_->WaitForEvents(id, last, std::min(heartbeat_, absl::Milliseconds(500)));
  }
}

absl::Status TuningServiceImpl::ListTuningJobEvents(Rpc& rpc,
                                                    const v1::ListTuningJobEventsRequest* req,
                                                    v1::ListTuningJobEventsResponse* resp) {
  ASSIGN_OR_RETURN(std::string id, ParseName(req->name(), kTuningJobs, "name"));
  // NOT_FOUND for an unknown job rather than an empty page.
  RETURN_IF_ERROR(jobs_->Get(id).status());
  // The page token is the id of the last event returned.
  ASSIGN_OR_RETURN(int64_t after, ParsePageToken(req->page_token()));
  const int64_t size = ClampPageSize(req->page_size(), 100);
  ASSIGN_OR_RETURN(auto events, jobs_->ListEvents(id, after, size + 1));
  for (size_t i = 0; i < events.size() && static_cast<int64_t>(i) < size; ++i) {
    *resp->add_events() = std::move(events[i]);
  }
  if (static_cast<int64_t>(events.size()) > size) {
    resp->set_next_page_token(absl::StrCat(resp->events(size - 1).id()));
  }
  return absl::OkStatus();
}

}  // namespace provp::server
