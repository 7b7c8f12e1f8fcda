// provp.v1.TuningService adapters over JobRunner: Create/Get/List/Cancel, the
// server-streaming Watch (snapshot, then the durable event log from
// after_event_id, live events, heartbeats; ends at a terminal state) and
// paginated event history. Scope: admin. Thread-safe.
#pragma once

#include "provp/v1/tuning.pb.h"
#include "server/rpc_service.h"
#include "server/state/job_runner.h"

namespace provp::server {

class TuningServiceImpl final : public RpcService {
 public:
  // `heartbeat`: the gap between HEARTBEAT events on an idle Watch.
  TuningServiceImpl(RpcEnv env, JobRunner* jobs, absl::Duration heartbeat);

 private:
  absl::Status CreateTuningJob(Rpc& rpc, const v1::CreateTuningJobRequest* req,
                               v1::TuningJob* resp);
  absl::Status GetTuningJob(Rpc& rpc, const v1::GetTuningJobRequest* req, v1::TuningJob* resp);
  absl::Status ListTuningJobs(Rpc& rpc, const v1::ListTuningJobsRequest* req,
                              v1::ListTuningJobsResponse* resp);
  absl::Status DeleteTuningJob(Rpc& rpc, const v1::DeleteTuningJobRequest* req,
                               v1::DeleteTuningJobResponse* resp);
  absl::Status CancelTuningJob(Rpc& rpc, const v1::CancelTuningJobRequest* req,
                               v1::TuningJob* resp);
  absl::Status WatchTuningJob(Rpc& rpc, const v1::WatchTuningJobRequest* req,
                              grpc::ServerWriter<v1::TuningJobEvent>* writer);
  absl::Status ListTuningJobEvents(Rpc& rpc, const v1::ListTuningJobEventsRequest* req,
                                   v1::ListTuningJobEventsResponse* resp);

  JobRunner* const jobs_;
  const absl::Duration heartbeat_;
};

}  // namespace provp::server
