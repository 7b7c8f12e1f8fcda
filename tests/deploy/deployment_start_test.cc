// Starts the real provp-server with exactly the argument list of every
// shipped deployment file (Dockerfile runtime stages, compose services,
// Kubernetes containers; tests/deploy/deploy_manifests.h reads them) and
// checks that each reaches SERVING, answers its own health checks (the
// Docker HEALTHCHECK command, the Kubernetes probes) and drains to exit 0
// on SIGTERM. Only local facts are substituted: absolute paths move under a
// temporary "container root" (the model there is the tiny CLIP fixture laid
// out as OpenAI's ViT-B-16.pt + bpe_simple_vocab_16e6.txt.gz, API key files
// get a test key), --device becomes cpu, and the container ports 50051 /
// 9090 / 8080 become free local ports. Probes go to 127.0.0.1 only.
// Labels deploy and integration.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/deploy/deploy_manifests.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_paths.h"

extern char** environ;

namespace provp::deploy {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int kContainerGrpcPort = 50051;
constexpr int kContainerMetricsPort = 9090;
constexpr int kContainerHttpPort = 8080;
constexpr char kTestKey[] = "deploy-test-admin-key-0001";

std::string Repo(const std::string& relative) {
  return std::string(PROVP_SOURCE_DIR) + "/" + relative;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

// gtest prints a parameter by its origin, not its bytes.
void PrintTo(const Launch& launch, std::ostream* os) { *os << launch.origin; }

namespace {

std::vector<Launch> AllLaunches() {
  std::vector<Launch> all;
  const std::string dockerfile = ReadText(Repo("Dockerfile"));
  auto docker = DockerfileLaunches(dockerfile);
  auto compose = ComposeLaunches(ReadText(Repo("deploy/compose.yaml")), dockerfile);
  auto tag = KustomizeImageTag(ReadText(Repo("deploy/k8s/kustomization.yaml")), "provp");
  auto k8s = KubernetesLaunches(ReadText(Repo("deploy/k8s/deployment.yaml")), dockerfile,
                                tag.ok() && !tag->empty() ? *tag : "gpu");
  for (auto* part : {&docker, &compose, &k8s}) {
    if (!part->ok()) {
      // Surfaces as a failing test named after the parse error.
      Launch broken;
      broken.origin = std::string(part->status().message());
      all.push_back(broken);
      continue;
    }
    all.insert(all.end(), (*part)->begin(), (*part)->end());
  }
  return all;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// The local stand-ins for one launch.
struct Local {
  std::string root;  // container "/" -> root + "/"
  std::map<int, int> ports;
  std::string server_binary;
  std::string client_binary;
};

std::string LocalPort(const Local& local, const std::string& token) {
  // "50051", "0.0.0.0:50051", "[::]:9090": the container port is the tail.
  const size_t colon = token.rfind(':');
  const std::string head = colon == std::string::npos ? "" : token.substr(0, colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(colon == std::string::npos ? token : token.substr(colon + 1), &port)) {
    return token;
  }
  auto it = local.ports.find(port);
  return it == local.ports.end() ? token : head + std::to_string(it->second);
}

// One argument (or flag value) with local substitutions.
std::string LocalValue(const Local& local, const std::string& flag, const std::string& value) {
  if (flag == "--device") return "cpu";
  if (absl::StartsWith(value, "/")) return local.root + value;
  return LocalPort(local, value);
}

// argv with substitutions; `paths` collects (flag, container path) pairs.
std::vector<std::string> LocalArgv(const Local& local, const std::vector<std::string>& argv,
                                   std::vector<std::pair<std::string, std::string>>* paths) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (i == 0) {
      if (a == "provp-server") {
        out.push_back(local.server_binary);
      } else if (a == "provp") {
        out.push_back(local.client_binary);
      } else {
        out.push_back(a);  // e.g. /bin/sh of a shell-form command
      }
      continue;
    }
    if (absl::StartsWith(a, "--") && a.find('=') != std::string::npos) {
      const std::string flag = a.substr(0, a.find('='));
      const std::string value = a.substr(a.find('=') + 1);
      if (absl::StartsWith(value, "/") && paths) paths->emplace_back(flag, value);
      out.push_back(flag + "=" + LocalValue(local, flag, value));
      continue;
    }
    const std::string flag = i > 1 && absl::StartsWith(argv[i - 1], "--") ? argv[i - 1] : "";
    if (absl::StartsWith(a, "/") && paths) paths->emplace_back(flag, a);
    out.push_back(absl::StartsWith(a, "--") ? a : LocalValue(local, flag, a));
  }
  return out;
}

absl::Status MakeContainerFiles(const Local& local,
                                const std::vector<std::pair<std::string, std::string>>& paths) {
  const std::string tiny = provp::testing::SharedDir() + "/fixtures/tiny/openai_jit.pt";
  const std::string vocab = provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
  std::error_code ec;
  for (const auto& [flag, path] : paths) {
    const fs::path here = local.root + path;
    if (flag == "--model") {
      fs::create_directories(here.parent_path(), ec);
      fs::create_symlink(tiny, here, ec);
      // OpenAI's layout: the BPE file beside the .pt (found without --vocab).
      fs::create_symlink(vocab, here.parent_path() / "bpe_simple_vocab_16e6.txt.gz", ec);
    } else if (flag == "--vocab") {
      fs::create_directories(here.parent_path(), ec);
      fs::create_symlink(vocab, here, ec);
    } else if (flag == "--api-keys") {
      fs::create_directories(here.parent_path(), ec);
      std::ofstream(here) << "admin " << kTestKey << " deploy-test\n";
    } else if (flag == "--data-dir") {
      fs::create_directories(here, ec);
    }
  }
  return absl::OkStatus();
}

// Every absolute path the server is given must lie on something the
// manifest mounts (compose volumes/secrets, Kubernetes volumeMounts).
absl::Status CheckMounted(const Launch& launch,
                          const std::vector<std::pair<std::string, std::string>>& paths) {
  if (launch.mounts.empty()) return absl::OkStatus();
  for (const auto& [flag, path] : paths) {
    bool mounted = false;
    for (const std::string& m : launch.mounts) {
      if (path == m || absl::StartsWith(path, m.back() == '/' ? m : m + "/")) mounted = true;
    }
    if (!mounted) {
      return absl::FailedPreconditionError(
          absl::StrCat(launch.origin, ": ", flag, " ", path,
                       " is on no mount (mounts: ", absl::StrJoin(launch.mounts, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

std::string Tail(const std::string& path, size_t bytes = 4000) {
  std::string text = ReadText(path);
  return text.size() > bytes ? "..." + text.substr(text.size() - bytes) : text;
}

// Runs argv (PATH not searched) with a deadline; returns the exit code,
// -1 on a signal or timeout. Output goes to `log`.
int RunFor(const std::vector<std::string>& argv, const std::string& log, int seconds) {
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = fopen(log.c_str(), "a");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> GrpcHealth(
    int port, const std::string& service) {
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) return absl::UnavailableError(st.error_message());
  return resp.status();
}

// HTTP status code of GET path on 127.0.0.1:port, or -1.
int HttpGetStatus(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  char buffer[64] = {0};
  const ssize_t n = recv(fd, buffer, sizeof(buffer) - 1, 0);
  close(fd);
  int code = -1;
  if (n > 12 && absl::StartsWith(buffer, "HTTP/1."))
    absl::SimpleAtoi(std::string(buffer + 9, 3), &code);
  return code;
}

bool TcpConnects(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

absl::Status RunProbe(const Local& local, const Probe& probe, const std::string& log) {
  const auto port_of = [&](int container_port) {
    auto it = local.ports.find(container_port);
    return it == local.ports.end() ? container_port : it->second;
  };
  switch (probe.kind) {
    case Probe::Kind::kExec: {
      std::vector<std::string> argv = LocalArgv(local, probe.command, nullptr);
      const int code = RunFor(argv, log, 30);
      if (code != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat(probe.name, " `", absl::StrJoin(probe.command, " "), "` exited ", code,
                         ":\n", Tail(log, 1500)));
      }
      return absl::OkStatus();
    }
    case Probe::Kind::kGrpc: {
      auto status = GrpcHealth(port_of(probe.port), probe.grpc_service);
      if (!status.ok() || *status != grpc::health::v1::HealthCheckResponse::SERVING) {
        return absl::FailedPreconditionError(absl::StrCat(
            probe.name, " grpc port ", probe.port, " service '", probe.grpc_service, "': ",
            status.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status)
                        : status.status().ToString()));
      }
      return absl::OkStatus();
    }
    case Probe::Kind::kHttpGet: {
      const int code = HttpGetStatus(port_of(probe.port), probe.http_path);
      if (code < 200 || code >= 400) {
        return absl::FailedPreconditionError(
            absl::StrCat(probe.name, " GET :", probe.port, probe.http_path, " answered ", code));
      }
      return absl::OkStatus();
    }
    case Probe::Kind::kTcpSocket:
      if (!TcpConnects(port_of(probe.port))) {
        return absl::FailedPreconditionError(
            absl::StrCat(probe.name, " tcpSocket ", probe.port, " refused"));
      }
      return absl::OkStatus();
  }
  return absl::InternalError("unknown probe kind");
}

// Starts `launch` locally, waits for SERVING, runs its probes, stops it.
absl::Status CheckLaunch(const Launch& launch, const std::string& workdir) {
  Local local;
  local.root = workdir + "/root";
  local.server_binary = PROVP_SERVER_BINARY;
  local.client_binary = PROVP_CLIENT_BINARY;
  for (int p : {kContainerGrpcPort, kContainerMetricsPort, kContainerHttpPort}) {
    local.ports[p] = FreePort();
  }
  std::error_code ec;
  fs::create_directories(local.root, ec);
  if (launch.argv.empty()) return absl::InvalidArgumentError(launch.origin + ": no command");
  if (launch.argv[0] != "provp-server") {
    return absl::FailedPreconditionError(
        absl::StrCat(launch.origin, ": runs '", launch.argv[0], "', not provp-server"));
  }
  std::vector<std::pair<std::string, std::string>> paths;
  std::vector<std::string> argv = LocalArgv(local, launch.argv, &paths);
  for (const auto& [name, value] : launch.env) {
    // Only PROVP_* reach the server (image variables like LD_LIBRARY_PATH
    // describe the image, not a mount).
    if (absl::StartsWith(name, "PROVP_") && absl::StartsWith(value, "/")) {
      paths.emplace_back(name, value);
    }
  }
  if (absl::Status s = CheckMounted(launch, paths); !s.ok()) return s;
  if (absl::Status s = MakeContainerFiles(local, paths); !s.ok()) return s;

  // Only what the manifest sets: the test's own PROVP_* settings stay out.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "PROVP_")) env.emplace_back(*e);
  }
  for (const auto& [name, value] : launch.env) {
    if (absl::StartsWith(name, "PROVP_")) env.push_back(name + "=" + LocalValue(local, "", value));
  }
  env.push_back("PROVP_KEEP_OPENBLAS=1");

  const std::string log = workdir + "/server.log";
  const std::string probe_log = workdir + "/probe.log";
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = fopen(log.c_str(), "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    if (chdir(workdir.c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  const std::string command = absl::StrJoin(argv, " ");
  auto stop = [&](bool graceful) -> int {
    kill(pid, graceful ? SIGTERM : SIGKILL);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  };

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  bool serving = false;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return absl::FailedPreconditionError(
          absl::StrCat(launch.origin, ": provp-server exited with ",
                       WIFEXITED(status) ? absl::StrCat("code ", WEXITSTATUS(status))
                                         : absl::StrCat("signal ", WTERMSIG(status)),
                       " before SERVING.\n  command: ", command, "\n  output:\n", Tail(log)));
    }
    auto health = GrpcHealth(local.ports[kContainerGrpcPort], "");
    if (health.ok() && *health == grpc::health::v1::HealthCheckResponse::SERVING) {
      serving = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!serving) {
    stop(false);
    return absl::DeadlineExceededError(absl::StrCat(launch.origin, ": not SERVING after 180 s.\n",
                                                    "  command: ", command, "\n  output:\n",
                                                    Tail(log)));
  }
  std::vector<std::string> failures;
  for (const Probe& probe : launch.probes) {
    if (absl::Status s = RunProbe(local, probe, probe_log); !s.ok()) {
      failures.push_back(std::string(s.message()));
    }
  }
  const int exit_code = stop(true);
  if (exit_code != 0) {
    failures.push_back(absl::StrCat("SIGTERM: exit ", exit_code, " (want 0)"));
  }
  if (!failures.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(launch.origin, ":\n  ", absl::StrJoin(failures, "\n  "),
                     "\n  command: ", command, "\n  server output:\n", Tail(log)));
  }
  return absl::OkStatus();
}

std::string MakeWorkdir() {
  std::string templ = ::testing::TempDir() + "/provp_deploy_XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

TEST(DeploymentFilesTest, EveryShippedWayToStartTheServerIsFound) {
  std::vector<std::string> origins;
  for (const Launch& l : AllLaunches()) origins.push_back(l.origin);
  EXPECT_THAT(origins,
              ::testing::IsSupersetOf({"Dockerfile stage cpu", "Dockerfile stage gpu",
                                       "compose service provp-cpu", "compose service provp-gpu",
                                       "Deployment provp container provp-server"}))
      << absl::StrJoin(origins, "; ");
  for (const Launch& l : AllLaunches()) {
    EXPECT_FALSE(l.probes.empty()) << l.origin << " has no health check";
  }
}

class DeploymentStartTest : public ::testing::TestWithParam<Launch> {};

TEST_P(DeploymentStartTest, ReachesServingAndPassesItsHealthChecks) {
  const std::string workdir = MakeWorkdir();
  ASSERT_FALSE(workdir.empty());
  absl::Status status = CheckLaunch(GetParam(), workdir);
  EXPECT_TRUE(status.ok()) << status.message();
  std::error_code ec;
  if (status.ok()) fs::remove_all(workdir, ec);
}

INSTANTIATE_TEST_SUITE_P(Manifests, DeploymentStartTest, ::testing::ValuesIn(AllLaunches()),
                         [](const ::testing::TestParamInfo<Launch>& info) {
                           std::string name = info.param.origin;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// The check itself can fail: a manifest naming a flag the server lacks is
// reported with the server's own complaint.
TEST(DeploymentCheckTest, AnUnknownFlagIsReportedWithTheServersMessage) {
  auto launches = DockerfileLaunches(ReadText(Repo("Dockerfile")));
  ASSERT_OK(launches);
  ASSERT_FALSE(launches->empty());
  Launch broken = launches->front();
  broken.argv.push_back("--grpc-port=50051");
  const std::string workdir = MakeWorkdir();
  absl::Status status = CheckLaunch(broken, workdir);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("before SERVING"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("--grpc-port"));
  std::error_code ec;
  fs::remove_all(workdir, ec);
}

// And a probe that cannot pass is reported too.
TEST(DeploymentCheckTest, AFailingHealthCheckIsReported) {
  auto launches = DockerfileLaunches(ReadText(Repo("Dockerfile")));
  ASSERT_OK(launches);
  ASSERT_FALSE(launches->empty());
  Launch broken = launches->front();
  Probe wrong_service;
  wrong_service.name = "readinessProbe";
  wrong_service.kind = Probe::Kind::kGrpc;
  wrong_service.port = kContainerGrpcPort;
  wrong_service.grpc_service = "no.such.Service";
  broken.probes = {wrong_service};
  const std::string workdir = MakeWorkdir();
  absl::Status status = CheckLaunch(broken, workdir);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("no.such.Service"));
  std::error_code ec;
  fs::remove_all(workdir, ec);
}

}  // namespace
}  // namespace provp::deploy
