// provp.v1.TuningService adapters over JobRunner: Create/Get/List/Cancel, the
// server-streaming Watch (snapshot, then the durable event log from
// after_event_id, live events, heartbeats; ends at a terminal state) and
// paginated event history. Scope: admin. Thread-safe.
#pragma once

#include "provp/v1/tuning.grpc.pb.h"
#include "server/rpc.h"
#include "server/state/job_runner.h"

namespace provp::server {

class TuningServiceImpl final : public v1::TuningService::Service {
 public:
  // `heartbeat`: the gap between HEARTBEAT events on an idle Watch.
  TuningServiceImpl(RpcEnv env, JobRunner* jobs, absl::Duration heartbeat)
      : env_(env), jobs_(jobs), heartbeat_(heartbeat) {}

  grpc::Status CreateTuningJob(grpc::ServerContext* ctx, const v1::CreateTuningJobRequest* req,
                               v1::TuningJob* resp) override;
  grpc::Status GetTuningJob(grpc::ServerContext* ctx, const v1::GetTuningJobRequest* req,
                            v1::TuningJob* resp) override;
  grpc::Status ListTuningJobs(grpc::ServerContext* ctx, const v1::ListTuningJobsRequest* req,
                              v1::ListTuningJobsResponse* resp) override;
  grpc::Status CancelTuningJob(grpc::ServerContext* ctx, const v1::CancelTuningJobRequest* req,
                               v1::TuningJob* resp) override;
  grpc::Status WatchTuningJob(grpc::ServerContext* ctx, const v1::WatchTuningJobRequest* req,
                              grpc::ServerWriter<v1::TuningJobEvent>* writer) override;
  grpc::Status ListTuningJobEvents(grpc::ServerContext* ctx,
                                   const v1::ListTuningJobEventsRequest* req,
                                   v1::ListTuningJobEventsResponse* resp) override;

 private:
  const RpcEnv env_;
  JobRunner* const jobs_;
  const absl::Duration heartbeat_;
};

}  // namespace provp::server
