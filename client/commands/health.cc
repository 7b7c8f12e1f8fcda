// `provp health` (grpc.health.v1 Check, optionally waiting until SERVING:
// used by container health checks and scripts that start a server) and
// `provp info` (what the server runs and its limits).
#include <chrono>
#include <thread>

#include "client/commands/command.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "provp/v1/classification.grpc.pb.h"

namespace provp::client {

void AddHealthCommand(CLI::App& app, Cli& cli) {
  auto service = std::make_shared<std::string>();
  auto wait = std::make_shared<double>(0);
  auto* cmd = app.add_subcommand("health", "Check the server's health (exit 0 when SERVING)");
  cmd->add_option("--service", *service, "Service name (default: the whole server)");
  cmd->add_option("--wait", *wait, "Keep trying for this many seconds until SERVING");
  cmd->callback([&cli, service, wait] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = grpc::health::v1::Health::NewStub(conn->channel());
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(*wait * 1000));
    for (;;) {
      grpc::health::v1::HealthCheckRequest req;
      req.set_service(*service);
      grpc::health::v1::HealthCheckResponse resp;
      auto ctx = conn->NewContext();
      grpc::Status st = stub->Check(ctx.get(), req, &resp);
      const bool serving =
          st.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
      if (serving || std::chrono::steady_clock::now() >= until) {
        if (!st.ok()) return Fail(cli, DescribeStatus(st));
        std::printf(
            "%s\n",
            grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()).c_str());
        if (!serving) cli.exit_code = 1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
}

void AddInfoCommand(CLI::App& app, Cli& cli) {
  auto* cmd = app.add_subcommand("info", "Show the server's backbone, device and limits");
  cmd->callback([&cli] {
    auto conn = Connect(cli);
    if (!conn) return;
    auto stub = provp::v1::ClassificationService::NewStub(conn->channel());
    provp::v1::GetServerInfoRequest req;
    provp::v1::ServerInfo info;
    auto ctx = conn->NewContext();
    grpc::Status st = stub->GetServerInfo(ctx.get(), req, &info);
    if (!st.ok()) return Fail(cli, DescribeStatus(st));
    if (cli.json) return PrintJson(info);
    std::printf("version      %s\nbackbone     %s\n             %s\ndevice       %s\n",
                info.version().c_str(), info.backbone().c_str(),
                info.backbone_description().c_str(), info.device().c_str());
    std::printf(
        "resolution   %d\nembedding    %d\nlimits       %d images/request, %lld pixels/image, %d "
        "classes/request, %lld bytes/message\n",
        info.image_resolution(), info.embedding_dimension(), info.max_images_per_request(),
        static_cast<long long>(info.max_pixels_per_image()), info.max_classes_per_request(),
        static_cast<long long>(info.max_message_bytes()));
  });
}

}  // namespace provp::client
