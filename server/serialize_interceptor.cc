// Implementation of serialize_interceptor.h.
#include "server/serialize_interceptor.h"

#include <chrono>
#include <cstring>

namespace provp::server {
namespace {

constexpr char kClassificationPrefix[] = "/provp.v1.ClassificationService/";

class SerializeTimingInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit SerializeTimingInterceptor(ServerMetrics* metrics) : metrics_(metrics) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE) &&
        methods->GetSendMessage() != nullptr) {
      const auto start = std::chrono::steady_clock::now();
      // Serialises the message now (gRPC keeps the buffer and sends it).
      methods->GetSerializedSendMessage();
      metrics_->stage_duration->WithLabels({"serialize"}).Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    methods->Proceed();
  }

 private:
  ServerMetrics* metrics_;
};

}  // namespace

grpc::experimental::Interceptor* SerializeTimingInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // Other services' responses are small; only inference is a stage.
  if (std::strncmp(info->method(), kClassificationPrefix, sizeof kClassificationPrefix - 1) != 0) {
    return nullptr;
  }
  return new SerializeTimingInterceptor(metrics_);
}

}  // namespace provp::server
