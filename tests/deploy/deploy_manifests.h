// Reads how each shipped deployment file starts provp-server: the argument
// list, environment, mounts and health checks of the Dockerfile's runtime
// stages (ENTRYPOINT + CMD, HEALTHCHECK), deploy/compose.yaml's provp
// services and deploy/k8s/deployment.yaml's containers (command/args, env,
// startup/liveness/readiness probes), exactly as written there. Compose and
// Kubernetes entries without a command take the ENTRYPOINT (and CMD) of the
// image stage they build or name. Pure functions of the file contents.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace provp::deploy {

// One health check as an orchestrator runs it.
struct Probe {
  enum class Kind { kExec, kGrpc, kHttpGet, kTcpSocket };
  std::string name;  // "HEALTHCHECK", "startupProbe", "livenessProbe", ...
  Kind kind = Kind::kExec;
  std::vector<std::string> command;  // kExec: argv (argv[0] resolved by PATH)
  int port = 0;                      // kGrpc, kHttpGet, kTcpSocket (container port)
  std::string grpc_service;          // kGrpc: grpc.health.v1 service name ("" = overall)
  std::string http_path;             // kHttpGet
};

// How one deployment file starts the server.
struct Launch {
  std::string origin;             // "Dockerfile stage cpu", "compose service provp-cpu", ...
  std::vector<std::string> argv;  // argv[0] is the executable name as written
  std::map<std::string, std::string> env;  // variables the manifest sets for it
  // Container paths something is mounted at (volumes, secrets); empty for
  // the Dockerfile, whose mounts are the user's `docker run -v`.
  std::vector<std::string> mounts;
  std::vector<Probe> probes;
};

// One Dockerfile stage's run-time settings (inherited through FROM <stage>).
struct DockerStage {
  std::string name;
  std::string base;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> healthcheck;  // the CMD of HEALTHCHECK; empty if none
  std::map<std::string, std::string> env;
  std::vector<std::string> volumes;
};

absl::StatusOr<std::vector<DockerStage>> ParseDockerfile(absl::string_view text);

// Launches of the Dockerfile's runtime stages (those with an ENTRYPOINT).
absl::StatusOr<std::vector<Launch>> DockerfileLaunches(absl::string_view dockerfile);

// Launches of the compose services built from this repository's Dockerfile,
// with compose variables at their defaults (as when none is set)
// (a `build:` with a `target:`).
absl::StatusOr<std::vector<Launch>> ComposeLaunches(absl::string_view compose,
                                                    absl::string_view dockerfile);

// Launches of every container of every Deployment in `manifest` (one or more
// YAML documents). `image_stage` names the Dockerfile stage the image is
// (kustomization's newTag).
absl::StatusOr<std::vector<Launch>> KubernetesLaunches(absl::string_view manifest,
                                                       absl::string_view dockerfile,
                                                       absl::string_view image_stage);

// The `newTag` kustomization.yaml gives image `name`, or "" if none.
absl::StatusOr<std::string> KustomizeImageTag(absl::string_view kustomization,
                                              absl::string_view name);

}  // namespace provp::deploy
