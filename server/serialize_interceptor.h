// A gRPC server interceptor that times the serialisation of the
// classification service's responses (Classify, StreamClassify,
// EmbedImages, EmbedTexts) into provp_stage_duration_seconds{stage=
// "serialize"}: gRPC serialises a response after the handler returns, so the
// handler's own timers never see it. At PRE_SEND_MESSAGE the interceptor asks
// for the serialised form, which makes gRPC serialise there (once: the
// buffer it returns is the one sent), and observes how long that took.
// Thread-safe: one interceptor per call, the histogram is thread-safe.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include "server/state/server_metrics.h"

namespace provp::server {

class SerializeTimingInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit SerializeTimingInterceptorFactory(ServerMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  ServerMetrics* metrics_;  // not owned; outlives the gRPC server
};

}  // namespace provp::server
