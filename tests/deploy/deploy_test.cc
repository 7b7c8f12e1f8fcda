// Checks on deploy/ and the Dockerfile, none of which can run here (no
// Docker engine, no cluster): promtool validates the Prometheus config, rule
// file and rule unit tests; yamllint (relaxed) every YAML file; the dashboard
// and alert rules may only query metrics listed in deploy/metrics.txt (or
// deploy/metrics-external.txt); and the compose, Kubernetes and Dockerfile
// wiring that the brief requires is present and self-consistent.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/metrics/families.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/deploy/promql_names.h"
#include "tests/testing/status_matchers.h"

namespace provp::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Repo(const std::string& relative) {
  return std::string(PROVP_SOURCE_DIR) + "/" + relative;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs a shell command; returns its exit code (-1 if it did not exit) and
// appends its combined output.
int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[1024];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void RequireTool(const char* path, const char* package) {
  ASSERT_EQ(access(path, X_OK), 0) << path << " is missing: install the Debian package '" << package
                                   << "' (scripts/install-deps.sh)";
}

// deploy/metrics.txt: name -> type.
std::map<std::string, std::string> ListedMetrics() {
  std::map<std::string, std::string> out;
  std::istringstream in(ReadText(Repo("deploy/metrics.txt")));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view s = absl::StripAsciiWhitespace(line);
    if (s.empty() || s[0] == '#') continue;
    std::vector<std::string> cols = absl::StrSplit(s, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    out[cols[0]] = cols.size() > 1 ? cols[1] : "";
  }
  return out;
}

std::set<std::string> ExternalMetrics() {
  std::set<std::string> out;
  std::istringstream in(ReadText(Repo("deploy/metrics-external.txt")));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view s = absl::StripAsciiWhitespace(line);
    if (!s.empty() && s[0] != '#') out.insert(std::string(s));
  }
  return out;
}

// Names in `exprs` that are neither listed nor external, as "name (where)".
std::vector<std::string> UnlistedNames(
    const std::vector<std::pair<std::string, std::string>>& exprs,
    std::set<std::string>* families_used) {
  const auto listed = ListedMetrics();
  const auto external = ExternalMetrics();
  auto is_histogram = [&](const std::string& n) {
    auto it = listed.find(n);
    return it != listed.end() && it->second == "histogram";
  };
  std::vector<std::string> unlisted;
  for (const auto& [where, expr] : exprs) {
    for (const std::string& name : MetricNamesInPromQL(expr)) {
      const std::string family = FamilyOfSample(name, is_histogram);
      if (families_used != nullptr) families_used->insert(family);
      if (listed.count(family) == 0 && external.count(name) == 0) {
        unlisted.push_back(name + " (" + where + ")");
      }
    }
  }
  return unlisted;
}

// `expr:` values of a Prometheus rule file: inline or `|` / `>` blocks.
std::vector<std::pair<std::string, std::string>> RuleExprs(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  std::string alert = "?";
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos) continue;
    absl::string_view body = absl::string_view(line).substr(indent);
    if (absl::ConsumePrefix(&body, "- alert:") || absl::ConsumePrefix(&body, "alert:")) {
      alert = std::string(absl::StripAsciiWhitespace(body));
      continue;
    }
    if (!absl::ConsumePrefix(&body, "expr:")) continue;
    body = absl::StripAsciiWhitespace(body);
    if (body != "|" && body != ">" && body != "|-" && body != ">-") {
      out.emplace_back(alert, std::string(body));
      continue;
    }
    std::string block;
    while (i + 1 < lines.size()) {
      const std::string& next = lines[i + 1];
      const size_t next_indent = next.find_first_not_of(' ');
      if (next_indent != std::string::npos && next_indent <= indent) break;
      block += next + "\n";
      ++i;
    }
    out.emplace_back(alert, block);
  }
  return out;
}

nlohmann::json Dashboard() {
  return nlohmann::json::parse(ReadText(Repo("deploy/grafana/provp-dashboard.json")));
}

// Every PromQL expression of the dashboard: panel targets and the
// metric argument of label_values() template queries.
std::vector<std::pair<std::string, std::string>> DashboardExprs(const nlohmann::json& dash) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& panel : dash.at("panels")) {
    if (!panel.contains("targets")) continue;
    for (const auto& target : panel.at("targets")) {
      out.emplace_back(panel.value("title", "?"), target.value("expr", ""));
    }
  }
  for (const auto& var : dash.at("templating").at("list")) {
    if (var.value("type", "") != "query") continue;
    std::string query = var.at("query").is_string() ? var.at("query").get<std::string>()
                                                    : var.at("query").value("query", "");
    static const std::regex kLabelValues(R"(label_values\((.*),\s*[a-zA-Z_]+\s*\))");
    std::smatch m;
    if (std::regex_search(query, m, kLabelValues)) query = m[1].str();
    out.emplace_back("variable " + var.value("name", "?"), query);
  }
  return out;
}

// --- Prometheus ------------------------------------------------------------

TEST(PrometheusTest, ConfigPassesPromtool) {
  RequireTool(PROVP_PROMTOOL, "prometheus");
  std::string out;
  EXPECT_EQ(RunCommand(std::string(PROVP_PROMTOOL) + " check config " +
                           Repo("deploy/prometheus/prometheus.yml"),
                       &out),
            0)
      << out;
}

TEST(PrometheusTest, RulesPassPromtool) {
  RequireTool(PROVP_PROMTOOL, "prometheus");
  std::string out;
  EXPECT_EQ(RunCommand(std::string(PROVP_PROMTOOL) + " check rules " +
                           Repo("deploy/prometheus/alerts.yml"),
                       &out),
            0)
      << out;
}

TEST(PrometheusTest, RuleUnitTestsPass) {
  RequireTool(PROVP_PROMTOOL, "prometheus");
  std::string out;
  EXPECT_EQ(RunCommand("cd " + Repo("deploy/prometheus") + " && " + PROVP_PROMTOOL +
                           " test rules alerts_test.yml",
                       &out),
            0)
      << out;
}

TEST(PrometheusTest, RequiredAlertsExist) {
  const std::string rules = ReadText(Repo("deploy/prometheus/alerts.yml"));
  for (const char* alert : {"ProvpServerDown", "ProvpHighErrorRatio", "ProvpHighP99Latency",
                            "ProvpQueueSaturated", "ProvpTuningJobFailed", "ProvpGpuMemoryHigh"}) {
    EXPECT_THAT(rules, HasSubstr(std::string("alert: ") + alert));
  }
}

TEST(PrometheusTest, AlertsUseOnlyListedMetrics) {
  const auto exprs = RuleExprs(ReadText(Repo("deploy/prometheus/alerts.yml")));
  ASSERT_GE(exprs.size(), 6u);
  std::set<std::string> used;
  EXPECT_THAT(UnlistedNames(exprs, &used), ::testing::IsEmpty());
  EXPECT_GE(used.size(), 6u);
}

TEST(PrometheusTest, ScrapesTheComposeServer) {
  const std::string config = ReadText(Repo("deploy/prometheus/prometheus.yml"));
  EXPECT_THAT(config, HasSubstr("job_name: provp"));
  EXPECT_THAT(config, HasSubstr("provp:9090"));
  EXPECT_THAT(config, HasSubstr("alerts.yml"));
}

// --- metrics.txt -----------------------------------------------------------

TEST(MetricListTest, EveryLineIsAValidRegistration) {
  const std::string text = ReadText(Repo("deploy/metrics.txt"));
  metrics::MetricFamilies registry;
  std::istringstream in(text);
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    absl::string_view s = absl::StripAsciiWhitespace(line);
    if (s.empty() || s[0] == '#') continue;
    std::vector<std::string> cols = absl::StrSplit(s, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    ASSERT_EQ(cols.size(), 3u) << "want 'name type labels': " << line;
    std::vector<std::string> labels;
    if (cols[2] != "-") labels = absl::StrSplit(cols[2], ',');
    absl::Status status;
    if (cols[1] == "counter") {
      status = registry.AddCounter(cols[0], "h", labels).status();
    } else if (cols[1] == "gauge") {
      status = registry.AddGauge(cols[0], "h", labels).status();
    } else if (cols[1] == "histogram") {
      status = registry.AddHistogram(cols[0], "h", labels, {1}).status();
    } else {
      ADD_FAILURE() << "unknown type '" << cols[1] << "' in: " << line;
      continue;
    }
    // Also rejects duplicates and names colliding with a histogram's series.
    EXPECT_THAT(status, IsOk()) << line;
    ++count;
  }
  EXPECT_GE(count, 30);
}

// --- Grafana ---------------------------------------------------------------

TEST(DashboardTest, ParsesAndEveryPanelQueries) {
  nlohmann::json dash;
  ASSERT_NO_THROW(dash = Dashboard());
  ASSERT_TRUE(dash.contains("panels"));
  int queried = 0;
  for (const auto& panel : dash.at("panels")) {
    if (panel.value("type", "") == "row") continue;
    ASSERT_TRUE(panel.contains("targets")) << panel.value("title", "?");
    EXPECT_FALSE(panel.at("targets").empty()) << panel.value("title", "?");
    for (const auto& target : panel.at("targets")) {
      EXPECT_FALSE(target.value("expr", "").empty()) << panel.value("title", "?");
      EXPECT_EQ(target.at("datasource").value("uid", ""), "${datasource}")
          << panel.value("title", "?");
    }
    ++queried;
  }
  EXPECT_GE(queried, 20);
}

TEST(DashboardTest, UsesOnlyListedMetrics) {
  std::set<std::string> used;
  EXPECT_THAT(UnlistedNames(DashboardExprs(Dashboard()), &used), ::testing::IsEmpty());
  EXPECT_GE(used.size(), 20u);
}

TEST(DashboardTest, CoversEveryAreaOfApiGuide35) {
  std::set<std::string> used;
  UnlistedNames(DashboardExprs(Dashboard()), &used);
  for (const char* family : {"up",
                             "provp_build_info",
                             "grpc_server_handled_total",
                             "provp_request_duration_seconds",
                             "provp_queue_duration_seconds",
                             "provp_stage_duration_seconds",
                             "provp_classify_images_total",
                             "provp_inferences_total",
                             "provp_executions_total",
                             "provp_queue_depth",
                             "provp_inflight_requests",
                             "provp_requests_rejected_total",
                             "provp_text_embedding_cache_hits_total",
                             "provp_text_embedding_cache_misses_total",
                             "provp_text_embedding_cache_entries",
                             "provp_text_embedding_cache_bytes",
                             "provp_prompt_sets_loaded",
                             "provp_prompt_set_load_duration_seconds",
                             "provp_gpu_memory_allocated_bytes",
                             "provp_gpu_memory_reserved_bytes",
                             "provp_gpu_memory_total_bytes",
                             "provp_tuning_jobs",
                             "provp_tuning_queue_wait_seconds",
                             "provp_tuning_current_progress_ratio",
                             "provp_tuning_current_train_loss",
                             "provp_tuning_job_duration_seconds",
                             "provp_tuning_jobs_finished_total",
                             "provp_tuning_job_failures_total"}) {
    EXPECT_EQ(used.count(family), 1u) << family << " is not on the dashboard";
  }
}

TEST(DashboardTest, ProvisioningPointsAtTheDashboard) {
  const std::string compose = ReadText(Repo("deploy/compose.yaml"));
  const std::string provider = ReadText(Repo("deploy/grafana/provisioning/dashboards/provp.yml"));
  EXPECT_THAT(provider, HasSubstr("path: /var/lib/grafana/dashboards"));
  EXPECT_THAT(compose, HasSubstr("./grafana/provp-dashboard.json:/var/lib/grafana/dashboards/"));
  EXPECT_THAT(ReadText(Repo("deploy/grafana/provisioning/datasources/prometheus.yml")),
              HasSubstr("url: http://prometheus:9090"));
}

// --- YAML ------------------------------------------------------------------

std::vector<std::string> DeployYamlFiles() {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(Repo("deploy"), ec), end; !ec && it != end; ++it) {
    const std::string ext = it->path().extension().string();
    if (it->is_regular_file() && (ext == ".yml" || ext == ".yaml")) {
      files.push_back(fs::relative(it->path(), Repo("")).string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(YamlTest, DeployHasYamlFiles) { EXPECT_GE(DeployYamlFiles().size(), 10u); }

class YamllintTest : public ::testing::TestWithParam<std::string> {};

TEST_P(YamllintTest, PassesRelaxed) {
  RequireTool(PROVP_YAMLLINT, "yamllint");
  std::string out;
  EXPECT_EQ(RunCommand(std::string(PROVP_YAMLLINT) + " -d relaxed " + Repo(GetParam()), &out), 0)
      << out;
}

INSTANTIATE_TEST_SUITE_P(Deploy, YamllintTest, ::testing::ValuesIn(DeployYamlFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// --- compose ---------------------------------------------------------------

TEST(ComposeTest, MountedFilesExistAndServicesArePresent) {
  const std::string compose = ReadText(Repo("deploy/compose.yaml"));
  for (const char* service : {"provp-gpu:", "provp-cpu:", "prometheus:", "grafana:"}) {
    EXPECT_THAT(compose, HasSubstr(service));
  }
  static const std::regex kMount(R"(- \./([^:\s]+):)");
  int mounts = 0;
  for (std::sregex_iterator it(compose.begin(), compose.end(), kMount), end; it != end; ++it) {
    EXPECT_TRUE(fs::exists(Repo("deploy/" + (*it)[1].str()))) << (*it)[1].str();
    ++mounts;
  }
  EXPECT_GE(mounts, 5);
  // The secret file itself is never committed; its example is.
  EXPECT_THAT(compose, HasSubstr("file: ./secrets/api-keys.txt"));
  EXPECT_TRUE(fs::exists(Repo("deploy/secrets/api-keys.example.txt")));
  EXPECT_THAT(compose, HasSubstr("- provp\n"));  // alias Prometheus scrapes
  EXPECT_THAT(compose, HasSubstr("capabilities: [gpu]"));
}

// --- Kubernetes ------------------------------------------------------------

TEST(KubernetesTest, DeploymentHasGpuProbesStorageAndSecrets) {
  const std::string deployment = ReadText(Repo("deploy/k8s/deployment.yaml"));
  size_t gpus = 0;
  for (size_t pos = 0; (pos = deployment.find("nvidia.com/gpu: 1", pos)) != std::string::npos;
       ++pos) {
    ++gpus;
  }
  EXPECT_EQ(gpus, 2u) << "GPU in requests and limits";
  static const std::regex kGrpcProbe(
      R"((startup|readiness)Probe:\s*\n\s*grpc:\s*\n\s*port: 50051)");
  int probes = 0;
  for (std::sregex_iterator it(deployment.begin(), deployment.end(), kGrpcProbe), end; it != end;
       ++it) {
    ++probes;
  }
  EXPECT_EQ(probes, 2);
  EXPECT_THAT(deployment,
              HasSubstr("livenessProbe:\n            httpGet:\n              path: /healthz"));
  EXPECT_THAT(deployment, HasSubstr("claimName: provp-data"));
  EXPECT_THAT(ReadText(Repo("deploy/k8s/pvc.yaml")), HasSubstr("name: provp-data"));
  EXPECT_THAT(deployment, HasSubstr("secretName: provp-api-keys"));
  EXPECT_THAT(ReadText(Repo("deploy/k8s/secret.yaml")), HasSubstr("name: provp-api-keys"));
  EXPECT_THAT(deployment, HasSubstr("prometheus.io/scrape: \"true\""));
  EXPECT_THAT(deployment, HasSubstr("mountPath: /data"));
  EXPECT_THAT(deployment, HasSubstr("runAsNonRoot: true"));
  for (const char* flag : {"--model=", "--device=", "--data-dir=/data", "--listen=0.0.0.0:50051",
                           "--metrics-port=9090", "--api-keys="}) {
    EXPECT_THAT(deployment, HasSubstr(flag));
  }
}

TEST(KubernetesTest, ServiceAndServiceMonitorAgreeOnPorts) {
  const std::string service = ReadText(Repo("deploy/k8s/service.yaml"));
  const std::string monitor = ReadText(Repo("deploy/k8s/servicemonitor.yaml"));
  EXPECT_THAT(service, HasSubstr("name: grpc"));
  EXPECT_THAT(service, HasSubstr("name: metrics"));
  EXPECT_THAT(monitor, HasSubstr("kind: ServiceMonitor"));
  EXPECT_THAT(monitor, HasSubstr("port: metrics"));
  EXPECT_THAT(monitor, HasSubstr("replacement: provp"));  // job label the rules select
}

TEST(KubernetesTest, KustomizeBuilds) {
  if (access("/usr/bin/kubectl", X_OK) != 0 && access("/usr/local/bin/kubectl", X_OK) != 0) {
    GTEST_SKIP() << "kubectl not installed";
  }
  std::string out;
  EXPECT_EQ(RunCommand("kubectl kustomize " + Repo("deploy/k8s"), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("kind: Deployment"));
  EXPECT_THAT(out, HasSubstr("namespace: provp"));
}

// --- Dockerfile --------------------------------------------------------------

TEST(DockerfileTest, StagesUseCiScriptsNonRootUserAndHealthcheck) {
  const std::string dockerfile = ReadText(Repo("Dockerfile"));
  static const std::regex kFrom(R"(\nFROM\s+(\S+)(?:\s+AS\s+(\S+))?)");
  std::vector<std::string> stages;
  std::vector<std::string> bases;
  for (std::sregex_iterator it(dockerfile.begin(), dockerfile.end(), kFrom), end; it != end; ++it) {
    bases.push_back((*it)[1].str());
    stages.push_back((*it)[2].str());
  }
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.back(), "gpu") << "the GPU image is the default target";
  EXPECT_THAT(stages, ::testing::IsSupersetOf({"cpu", "cpu-build", "gpu", "gpu-build"}));
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i] == "gpu-build") {
      EXPECT_THAT(bases[i], HasSubstr("-devel-"));
    } else if (stages[i] == "gpu") {
      EXPECT_THAT(bases[i], HasSubstr("-runtime-"));
    } else if (stages[i] == "cpu-build" || stages[i] == "cpu") {
      EXPECT_THAT(bases[i], HasSubstr("debian:12"));
    }
  }
  size_t builds = 0;
  for (size_t pos = 0; (pos = dockerfile.find("bash scripts/build.sh", pos)) != std::string::npos;
       ++pos) {
    ++builds;
  }
  EXPECT_EQ(builds, 2u);
  EXPECT_THAT(dockerfile, HasSubstr("bash scripts/install-deps.sh"));
  EXPECT_THAT(dockerfile, HasSubstr("libtorch-cxx11-abi"));
  EXPECT_THAT(dockerfile, HasSubstr("USER provp"));
  EXPECT_THAT(dockerfile, HasSubstr("VOLUME [\"/data\"]"));
  EXPECT_THAT(dockerfile,
              HasSubstr("CMD [\"provp\", \"--address\", \"127.0.0.1:50051\", \"health\"]"));
  EXPECT_THAT(dockerfile, HasSubstr("ENTRYPOINT [\"provp-server\"]"));
  for (const char* script :
       {"deploy/docker/collect-binaries.sh", "deploy/docker/runtime-packages.sh",
        "scripts/install-deps.sh", "scripts/build.sh"}) {
    EXPECT_EQ(access(Repo(script).c_str(), R_OK), 0) << script;
  }
  EXPECT_EQ(access(Repo("deploy/docker/runtime-packages.sh").c_str(), X_OK), 0);
}

TEST(DockerfileTest, RuntimePackagesResolvesALocalBinary) {
  // The script the runtime stages depend on, run against a binary here.
  std::string out;
  ASSERT_EQ(RunCommand("bash " + Repo("deploy/docker/runtime-packages.sh") + " /bin/sh", &out), 0)
      << out;
  EXPECT_THAT(out, HasSubstr("libc6"));
}

}  // namespace
}  // namespace provp::testing
