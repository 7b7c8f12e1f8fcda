// The gRPC server end to end in-process: a real grpc::Server on
// 127.0.0.1:0 with the fake engine, driven through the generated stubs.
// Covers classification (zero-shot, prompt sets, novel classes, per-item
// errors, streaming), auth scopes, limits and bad input with their codes
// and reasons, dataset upload validation, tuning jobs (watch, concurrent
// classification, cancel, queue limit, idempotency), prompt-set
// export/import, and a graceful restart that resumes a job.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "provp/v1/class_set.grpc.pb.h"
#include "provp/v1/classification.grpc.pb.h"
#include "provp/v1/dataset.grpc.pb.h"
#include "provp/v1/prompt_set.grpc.pb.h"
#include "provp/v1/tuning.grpc.pb.h"
#include "server/server.h"
#include "tests/integration/server_test_util.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/status_matchers.h"

namespace provp::server {
namespace {

using ::provp::testing::Ctx;
using ::provp::testing::FieldOf;
using ::provp::testing::ReasonOf;
using ::provp::testing::SolidPng;
using ::provp::testing::TempDir;

constexpr char kAdmin[] = "admin-key-123456";
constexpr char kClient[] = "client-key-123456";

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_path_ = dir_.path() + "/keys";
    FILE* f = fopen(keys_path_.c_str(), "w");
    fprintf(f, "admin %s ops\nclassify %s app\n", kAdmin, kClient);
    fclose(f);
    StartServer();
  }
  void TearDown() override { StopServer(); }

  ServerOptions Options() {
    ServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.data_dir = dir_.path() + "/data";
    o.api_keys_file = keys_path_;
    o.limits.max_message_bytes = 2 << 20;
    o.limits.max_images_per_request = 8;
    o.limits.max_queued_jobs = 2;
    o.batching.max_queue_delay_us = max_queue_delay_us_;
    o.watch_heartbeat_seconds = 0.5;
    o.shutdown_grace_seconds = 2;
    o.metrics_port = 0;
    o.dataset_roots = {dir_.path() + "/roots"};
    o.metrics_bind_address = "127.0.0.1";
    return o;
  }

  void StartServer(int step_ms = 5, engine::FakeEngineOptions fo = {}) {
    fo.step_milliseconds = step_ms;
    auto s = Server::Create(Options(), std::make_unique<engine::FakeEngine>(fo));
    ASSERT_OK(s);
    server_ = std::move(*s);
    ASSERT_OK(server_->Start());
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                         grpc::InsecureChannelCredentials(), args);
    classify_ = v1::ClassificationService::NewStub(channel_);
    datasets_ = v1::DatasetService::NewStub(channel_);
    jobs_ = v1::TuningService::NewStub(channel_);
    prompt_sets_ = v1::PromptSetService::NewStub(channel_);
    class_sets_ = v1::ClassSetService::NewStub(channel_);
  }

  void StopServer() {
    if (server_) server_->Shutdown();
    server_.reset();
  }

  static v1::Image Png(uint8_t r, uint8_t g, uint8_t b, int seed = 0) {
    v1::Image img;
    img.set_encoded(SolidPng(r, g, b, 16, seed));
    return img;
  }

  v1::ClassifyRequest ColourRequest(std::vector<std::string> names) {
    v1::ClassifyRequest req;
    req.mutable_inline_classes();  // set even when empty
    for (auto& n : names) req.mutable_inline_classes()->add_names(n);
    *req.add_images() = Png(250, 10, 10);
    *req.add_images() = Png(10, 10, 250);
    return req;
  }

  // Uploads red/green/blue (base) and yellow (novel): 4 train + 2 test each.
  grpc::Status Upload(const std::string& id, v1::Dataset* out, int min_shots = 2) {
    auto ctx = Ctx(kAdmin);
    auto writer = datasets_->UploadDataset(ctx.get(), out);
    v1::UploadDatasetRequest meta;
    auto* m = meta.mutable_metadata();
    m->set_dataset_id(id);
    for (const char* n : {"red", "green", "blue", "yellow"}) m->add_class_names(n);
    m->add_novel_class_names("yellow");
    m->set_min_shots(min_shots);
    writer->Write(meta);
    const uint8_t colours[4][3] = {{240, 20, 20}, {20, 240, 20}, {20, 20, 240}, {240, 240, 20}};
    for (int c = 0; c < 4; ++c) {
      v1::UploadDatasetRequest chunk;
      for (int i = 0; i < 6; ++i) {
        auto* img = chunk.mutable_images()->add_images();
        img->set_label(c);
        img->set_encoded(SolidPng(colours[c][0], colours[c][1], colours[c][2], 16, i));
        img->set_split(i < 4 ? v1::TRAIN : v1::TEST);
      }
      writer->Write(chunk);
    }
    writer->WritesDone();
    return writer->Finish();
  }

  grpc::Status CreateJob(const std::string& id, const std::string& dataset, int epochs,
                         v1::TuningJob* out, const std::string& request_id = "") {
    v1::CreateTuningJobRequest req;
    req.set_tuning_job_id(id);
    req.set_request_id(request_id);
    req.mutable_tuning_job()->set_dataset(dataset);
    req.mutable_tuning_job()->mutable_hyperparameters()->set_shots(2);
    req.mutable_tuning_job()->mutable_hyperparameters()->set_epochs(epochs);
    auto ctx = Ctx(kAdmin);
    return jobs_->CreateTuningJob(ctx.get(), req, out);
  }

  v1::TuningJob GetJob(const std::string& id) {
    v1::GetTuningJobRequest req;
    req.set_name("tuningJobs/" + id);
    v1::TuningJob job;
    auto ctx = Ctx(kAdmin);
    EXPECT_TRUE(jobs_->GetTuningJob(ctx.get(), req, &job).ok());
    return job;
  }

  // Polls until the job is in `state` (or 20 s pass).
  v1::TuningJob WaitFor(const std::string& id, v1::TuningJob::State state) {
    v1::TuningJob job;
    for (int i = 0; i < 400; ++i) {
      job = GetJob(id);
      if (job.state() == state) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return job;
  }

  std::vector<v1::TuningJobEvent> AllEvents(const std::string& id) {
    std::vector<v1::TuningJobEvent> out;
    std::string token;
    do {
      v1::ListTuningJobEventsRequest req;
      req.set_name("tuningJobs/" + id);
      req.set_page_size(7);
      req.set_page_token(token);
      v1::ListTuningJobEventsResponse resp;
      auto ctx = Ctx(kAdmin);
      EXPECT_TRUE(jobs_->ListTuningJobEvents(ctx.get(), req, &resp).ok());
      out.insert(out.end(), resp.events().begin(), resp.events().end());
      token = resp.next_page_token();
    } while (!token.empty());
    return out;
  }

  bool Serving() {
    // The server still answers a zero-shot call after the bad requests.
    auto c = Ctx(kClient);
    v1::ClassifyResponse resp;
    return classify_->Classify(c.get(), ColourRequest({"red", "blue"}), &resp).ok();
  }

  int64_t max_queue_delay_us_ = 1000;
  TempDir dir_;
  std::string keys_path_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ClassificationService::Stub> classify_;
  std::unique_ptr<v1::DatasetService::Stub> datasets_;
  std::unique_ptr<v1::TuningService::Stub> jobs_;
  std::unique_ptr<v1::PromptSetService::Stub> prompt_sets_;
  std::unique_ptr<v1::ClassSetService::Stub> class_sets_;
};

TEST_F(ServerTest, ZeroShotClassifyWithPerItemErrorsAndRequestId) {
  v1::ClassifyRequest req = ColourRequest({"red", "green", "blue"});
  req.add_images()->set_encoded("definitely not an image");
  req.add_images()->set_uri("http://example.com/x.jpg");
  req.set_top_k(2);
  req.set_request_id("abc");
  auto ctx = Ctx(kClient);
  v1::ClassifyResponse resp;
  grpc::Status s = classify_->Classify(ctx.get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.request_id(), "abc");
  ASSERT_EQ(resp.results_size(), 4);
  EXPECT_EQ(resp.results(0).prediction().labels(0).label(), "red");
  EXPECT_EQ(resp.results(0).prediction().labels_size(), 2);
  EXPECT_GT(resp.results(0).prediction().labels(0).score(), 0.9f);
  EXPECT_EQ(resp.results(1).prediction().labels(0).label(), "blue");
  EXPECT_EQ(resp.results(1).prediction().labels(0).class_index(), 2);
  ASSERT_TRUE(resp.results(2).has_error());
  EXPECT_EQ(resp.results(2).error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(resp.results(2).error()), "IMAGE_DECODE_FAILED");
  EXPECT_EQ(resp.results(3).error().code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ReasonOf(resp.results(3).error()), "URI_INPUT_DISABLED");
  auto md = ctx->GetServerInitialMetadata();
  ASSERT_EQ(md.count("x-request-id"), 1u);
  EXPECT_FALSE(md.find("x-request-id")->second.empty());
}

TEST_F(ServerTest, HealthReportsServingPerService) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* svc : {"", "provp.v1.ClassificationService", "provp.v1.TuningService"}) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(svc);
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << svc;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << svc;
  }
}

// GET over a plain socket (the metrics endpoint speaks HTTP/1.1).
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

TEST_F(ServerTest, MetricsEndpointListsEveryDeployFamily) {
  auto ctx = Ctx(kClient);
  v1::ClassifyResponse resp;
  ASSERT_TRUE(classify_->Classify(ctx.get(), ColourRequest({"red", "blue"}), &resp).ok());
  ASSERT_GT(server_->metrics_port(), 0);
  std::string body = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_NE(body.find("200 OK"), std::string::npos) << body.substr(0, 200);
  std::ifstream list(std::string(PROVP_SOURCE_DIR) + "/deploy/metrics.txt");
  if (!list) GTEST_SKIP() << "deploy/metrics.txt not present";
  std::string line;
  int families = 0;
  while (std::getline(list, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string name = line.substr(0, line.find_first_of(" \t"));
    ++families;
    EXPECT_NE(body.find("# TYPE " + name + " "), std::string::npos) << name;
  }
  EXPECT_GT(families, 20);
  bool handled = false;
  std::istringstream lines(body);
  while (std::getline(lines, line)) {
    handled |= line.rfind("grpc_server_handled_total{", 0) == 0 &&
               line.find("grpc_method=\"Classify\"") != std::string::npos &&
               line.find("grpc_code=\"OK\"") != std::string::npos;
  }
  EXPECT_TRUE(handled);
  EXPECT_NE(HttpGet(server_->metrics_port(), "/readyz").find("200"), std::string::npos);
}

// The value of one exposition line `name{labels} value`, or NaN if absent.
double MetricValue(const std::string& body, const std::string& series) {
  const size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return std::nan("");
  return std::strtod(body.c_str() + at + series.size() + 2, nullptr);
}

// Every stage of the server's own time per image is observed: decode and
// resize per image, scoring, and the response's serialisation (timed by the
// interceptor at gRPC's send hook, once per classification response and
// never for other services).
TEST_F(ServerTest, StageMetricsCoverDecodeResizeScoreAndSerialize) {
  auto count = [&](const std::string& stage) {
    return MetricValue(HttpGet(server_->metrics_port(), "/metrics"),
                       "provp_stage_duration_seconds_count{stage=\"" + stage + "\"}");
  };
  const double serialized_before = count("serialize");
  const double decoded_before = count("decode");
  v1::ClassifyRequest req = ColourRequest({"red", "green", "blue"});
  const int images = req.images_size();
  for (int i = 0; i < 3; ++i) {
    auto ctx = Ctx(kClient);
    v1::ClassifyResponse resp;
    ASSERT_TRUE(classify_->Classify(ctx.get(), req, &resp).ok());
  }
  EXPECT_EQ(count("serialize") - serialized_before, 3);
  EXPECT_EQ(count("decode") - decoded_before, 3 * images);
  EXPECT_GT(count("resize"), 0);
  EXPECT_GT(count("score"), 0);
  // A health check is not an inference response: no serialize sample.
  const double serialized = count("serialize");
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckResponse checked;
  ASSERT_TRUE(health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &checked).ok());
  EXPECT_EQ(count("serialize"), serialized);
}

TEST_F(ServerTest, CpuEngineExportsZeroDeviceMemory) {
  std::string body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_EQ(MetricValue(body, "provp_gpu_memory_total_bytes{gpu=\"0\"}"), 0.0);
  EXPECT_EQ(MetricValue(body, "provp_gpu_memory_allocated_bytes{gpu=\"0\"}"), 0.0);
}

TEST_F(ServerTest, DeviceMemoryGaugesReadTheEngineAtScrapeTime) {
  StopServer();
  engine::FakeEngineOptions fo;
  fo.device_memory = engine::DeviceMemory{"cuda:1", 1000, 1 << 20, 80LL << 30};
  StartServer(5, fo);
  std::string body = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_EQ(MetricValue(body, "provp_gpu_memory_allocated_bytes{gpu=\"1\"}"), 1000.0) << body;
  EXPECT_EQ(MetricValue(body, "provp_gpu_memory_reserved_bytes{gpu=\"1\"}"), 1 << 20);
  EXPECT_EQ(MetricValue(body, "provp_gpu_memory_total_bytes{gpu=\"1\"}"), 80.0 * (1LL << 30));
  EXPECT_TRUE(std::isnan(MetricValue(body, "provp_gpu_memory_total_bytes{gpu=\"0\"}")));

  auto ctx = Ctx(kClient);
  v1::ClassifyResponse resp;
  ASSERT_TRUE(classify_->Classify(ctx.get(), ColourRequest({"red", "blue"}), &resp).ok());
  body = HttpGet(server_->metrics_port(), "/metrics");
  // Two images encoded since start-up: the gauge follows the engine.
  EXPECT_EQ(MetricValue(body, "provp_gpu_memory_allocated_bytes{gpu=\"1\"}"), 1000.0 + 2 * 4096);
}

TEST_F(ServerTest, EmbedImagesAndTexts) {
  v1::EmbedImagesRequest ir;
  *ir.add_images() = Png(250, 10, 10);
  ir.add_images()->set_encoded("junk");
  v1::EmbedImagesResponse iresp;
  auto c1 = Ctx(kClient);
  ASSERT_TRUE(classify_->EmbedImages(c1.get(), ir, &iresp).ok());
  ASSERT_EQ(iresp.embeddings_size(), 2);
  EXPECT_EQ(iresp.dimension(), 16);
  double n = 0;
  for (float v : iresp.embeddings(0).values()) n += v * v;
  EXPECT_NEAR(n, 1.0, 1e-4);
  EXPECT_EQ(ReasonOf(iresp.embeddings(1).error()), "IMAGE_DECODE_FAILED");
  v1::EmbedTextsRequest tr;
  tr.add_texts("a red thing");
  tr.add_texts("a blue thing");
  v1::EmbedTextsResponse tresp;
  auto c2 = Ctx(kClient);
  ASSERT_TRUE(classify_->EmbedTexts(c2.get(), tr, &tresp).ok());
  ASSERT_EQ(tresp.embeddings_size(), 2);
  EXPECT_NE(tresp.embeddings(0).values(0), tresp.embeddings(1).values(0));
  auto c3 = Ctx(kClient);
  EXPECT_EQ(classify_->EmbedTexts(c3.get(), {}, &tresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, RegisterServerSideClassFolders) {
  const std::string root = dir_.path() + "/roots/shapes";
  for (const char* cls : {"red", "green"}) {
    ASSERT_EQ(system(("mkdir -p " + root + "/" + cls).c_str()), 0);
    for (int i = 0; i < 3; ++i) {
      std::ofstream(root + "/" + cls + "/" + std::to_string(i) + ".png", std::ios::binary)
          << SolidPng(cls[0] == 'r' ? 240 : 10, cls[0] == 'g' ? 240 : 10, 10, 16, i);
    }
  }
  v1::RegisterDatasetRequest req;
  req.set_dataset_id("shapes");
  req.set_path(root);
  req.set_min_shots(2);
  v1::Dataset ds;
  auto c1 = Ctx(kAdmin);
  grpc::Status s = datasets_->RegisterDataset(c1.get(), req, &ds);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(ds.class_names_size(), 2);
  EXPECT_EQ(ds.stats().num_train_images(), 6);
  EXPECT_EQ(ds.source(), v1::Dataset::DIRECTORY);
  v1::TuningJob job;
  ASSERT_TRUE(CreateJob("fromdir", "datasets/shapes", 2, &job).ok());
  EXPECT_EQ(WaitFor("fromdir", v1::TuningJob::SUCCEEDED).state(), v1::TuningJob::SUCCEEDED);
  req.set_dataset_id("outside");
  req.set_path("/etc");
  auto c2 = Ctx(kAdmin);
  s = datasets_->RegisterDataset(c2.get(), req, &ds);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(s), "PATH_NOT_ALLOWED");
  req.set_path(dir_.path() + "/roots/../keys");
  auto c3 = Ctx(kAdmin);
  EXPECT_EQ(datasets_->RegisterDataset(c3.get(), req, &ds).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, RawImagesAndAllScores) {
  v1::ClassifyRequest req;
  for (const char* n : {"red", "green"}) req.mutable_inline_classes()->add_names(n);
  auto* raw = req.add_images()->mutable_raw();
  raw->set_height(2);
  raw->set_width(2);
  raw->set_channels(3);
  raw->set_channel_order(v1::RawImage::BGR);
  raw->set_data(std::string("\x00\xff\x00\x00\xff\x00\x00\xff\x00\x00\xff\x00", 12));
  auto* bad = req.add_images()->mutable_raw();
  bad->set_height(2);
  bad->set_width(2);
  bad->set_channels(3);
  bad->set_data("short");
  req.set_return_all_scores(true);
  auto ctx = Ctx(kClient);
  v1::ClassifyResponse resp;
  ASSERT_TRUE(classify_->Classify(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.results(0).prediction().labels(0).label(), "green");
  EXPECT_EQ(resp.results(0).prediction().all_scores_size(), 2);
  EXPECT_EQ(ReasonOf(resp.results(1).error()), "INVALID_RAW_IMAGE");
}

TEST_F(ServerTest, AuthScopes) {
  v1::ClassifyResponse resp;
  auto none = Ctx("");
  grpc::Status s = classify_->Classify(none.get(), ColourRequest({"red"}), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(s), "MISSING_CREDENTIALS");
  auto wrong = Ctx("not-a-real-key-000");
  s = classify_->Classify(wrong.get(), ColourRequest({"red"}), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(s), "INVALID_API_KEY");
  v1::TuningJob job;
  v1::CreateTuningJobRequest req;
  auto client = Ctx(kClient);
  s = jobs_->CreateTuningJob(client.get(), req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(s), "INSUFFICIENT_SCOPE");
  v1::ListDatasetsResponse dl;
  auto client2 = Ctx(kClient);
  EXPECT_EQ(datasets_->ListDatasets(client2.get(), {}, &dl).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto admin = Ctx(kAdmin);
  EXPECT_TRUE(classify_->Classify(admin.get(), ColourRequest({"red", "blue"}), &resp).ok());
}

TEST_F(ServerTest, LimitsAndBadRequests) {
  v1::ClassifyResponse resp;
  struct Case {
    v1::ClassifyRequest req;
    grpc::StatusCode code;
    std::string reason;
  };
  std::vector<Case> cases;
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    for (int i = 0; i < 8; ++i) *r.add_images() = Png(1, 2, 3);
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, "TOO_MANY_IMAGES"});
  }
  cases.push_back({ColourRequest({}), grpc::StatusCode::INVALID_ARGUMENT, "EMPTY_CLASS_LIST"});
  cases.push_back(
      {ColourRequest({"red", "red"}), grpc::StatusCode::INVALID_ARGUMENT, "DUPLICATE_CLASS_NAME"});
  cases.push_back({ColourRequest({std::string(300, 'x')}), grpc::StatusCode::INVALID_ARGUMENT,
                   "NAME_TOO_LONG"});
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    r.clear_inline_classes();
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, "NO_CLASSES"});
  }
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    r.set_top_k(-1);
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_TOP_K"});
  }
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    r.add_templates("no placeholder");
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_TEMPLATE"});
  }
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    r.set_prompt_set("promptSets/nope");
    cases.push_back({r, grpc::StatusCode::NOT_FOUND, "NOT_FOUND"});
  }
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    r.set_prompt_set("bad name");
    cases.push_back({r, grpc::StatusCode::INVALID_ARGUMENT, "INVALID_NAME"});
  }
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    r.set_class_set("classSets/missing");
    cases.push_back({r, grpc::StatusCode::NOT_FOUND, "NOT_FOUND"});
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    auto ctx = Ctx(kClient);
    grpc::Status s = classify_->Classify(ctx.get(), cases[i].req, &resp);
    EXPECT_EQ(s.error_code(), cases[i].code) << "case " << i << ": " << s.error_message();
    EXPECT_EQ(ReasonOf(s), cases[i].reason) << "case " << i;
  }
  // Oversize message: rejected by gRPC before the handler.
  {
    v1::ClassifyRequest r = ColourRequest({"red"});
    r.add_images()->set_encoded(std::string(3 << 20, 'x'));
    auto ctx = Ctx(kClient);
    EXPECT_EQ(classify_->Classify(ctx.get(), r, &resp).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Expired deadline.
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", std::string("Bearer ") + kClient);
    ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
    EXPECT_EQ(classify_->Classify(&ctx, ColourRequest({"red"}), &resp).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // Field violations name the field.
  {
    auto ctx = Ctx(kClient);
    grpc::Status s = classify_->Classify(ctx.get(), ColourRequest({"red", ""}), &resp);
    EXPECT_EQ(FieldOf(s), "inline_classes.names[1]");
  }
  EXPECT_TRUE(Serving());
}

TEST_F(ServerTest, ClassSetsAndStreamClassify) {
  v1::CreateClassSetRequest req;
  req.set_class_set_id("colours");
  for (const char* n : {"red", "green", "blue"}) req.mutable_class_set()->add_class_names(n);
  req.mutable_class_set()->add_templates("a {} thing");
  v1::ClassSet cs;
  {
    auto ctx = Ctx(kClient);
    EXPECT_EQ(class_sets_->CreateClassSet(ctx.get(), req, &cs).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    auto ctx = Ctx(kAdmin);
    ASSERT_TRUE(class_sets_->CreateClassSet(ctx.get(), req, &cs).ok());
    EXPECT_EQ(cs.name(), "classSets/colours");
  }
  {
    auto ctx = Ctx(kAdmin);
    EXPECT_EQ(class_sets_->CreateClassSet(ctx.get(), req, &cs).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
  }
  auto ctx = Ctx(kClient);
  auto stream = classify_->StreamClassify(ctx.get());
  v1::ClassifyRequest a;
  a.set_class_set("classSets/colours");
  *a.add_images() = Png(10, 250, 10);
  a.set_request_id("one");
  v1::ClassifyRequest b = a;
  b.set_prompt_set("promptSets/missing");
  b.set_request_id("two");
  ASSERT_TRUE(stream->Write(a));
  ASSERT_TRUE(stream->Write(b));
  stream->WritesDone();
  // Answers come as they are ready (the failing "two" may overtake "one").
  v1::ClassifyResponse r1, r2;
  ASSERT_TRUE(stream->Read(&r1));
  ASSERT_TRUE(stream->Read(&r2));
  EXPECT_TRUE(stream->Finish().ok());
  if (r1.request_id() != "one") std::swap(r1, r2);
  EXPECT_EQ(r1.request_id(), "one");
  EXPECT_EQ(r1.results(0).prediction().labels(0).label(), "green");
  EXPECT_EQ(r2.request_id(), "two");
  EXPECT_EQ(r2.error().code(), grpc::StatusCode::NOT_FOUND);
}

// Issue 11: a stream keeps several messages in flight, so messages a client
// sends without waiting share model executions. (One at a time, each
// waited out the batcher's delay alone and ran at batch size 1.)
TEST_F(ServerTest, StreamClassifyMessagesShareBatches) {
  StopServer();
  max_queue_delay_us_ = 300000;  // the batcher waits long enough to gather them
  StartServer();
  auto ctx = Ctx(kClient);
  auto stream = classify_->StreamClassify(ctx.get());
  constexpr int kMessages = 6;
  for (int i = 0; i < kMessages; ++i) {
    v1::ClassifyRequest req;
    for (const char* n : {"red", "green", "blue"}) req.mutable_inline_classes()->add_names(n);
    *req.add_images() = i % 2 ? Png(10, 10, 250, i) : Png(250, 10, 10, i);
    req.set_request_id(absl::StrCat("m", i));
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  std::set<std::string> answered;
  int largest_batch = 0;
  v1::ClassifyResponse r;
  while (stream->Read(&r)) {
    ASSERT_FALSE(r.has_error()) << r.error().message();
    ASSERT_EQ(r.results_size(), 1);
    const int i = std::stoi(r.request_id().substr(1));
    EXPECT_EQ(r.results(0).prediction().labels(0).label(), i % 2 ? "blue" : "red");
    largest_batch = std::max(largest_batch, r.results(0).timing().batch_size());
    answered.insert(r.request_id());
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered.size(), static_cast<size_t>(kMessages));
  EXPECT_GE(largest_batch, 2);
}

// Issue 14: a StreamClassify open when the server drains gets its in-flight
// message answered and then ends with UNAVAILABLE, reason DRAINING (it
// ended with OK, so clients could not tell a drain from a normal end).
TEST_F(ServerTest, Issue14OpenStreamEndsWithDrainingOnShutdown) {
  auto ctx = Ctx(kClient);
  auto stream = classify_->StreamClassify(ctx.get());
  v1::ClassifyRequest req = ColourRequest({"red", "green", "blue"});
  req.set_request_id("before");
  ASSERT_TRUE(stream->Write(req));
  v1::ClassifyResponse before;
  ASSERT_TRUE(stream->Read(&before));
  EXPECT_EQ(before.request_id(), "before");
  std::thread stopper([this] { server_->Shutdown(); });
  // Shutdown marks the server draining at once, then waits up to its grace
  // period (2 s here) for open calls.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The handler usually waits in Read when the drain starts: it then answers
  // "during" and ends. On a loaded machine it may instead still be between
  // answering "before" and its drain check, and end without reading
  // "during" (the client resends it after reconnecting). Either way the
  // stream ends UNAVAILABLE/DRAINING, never OK, and a message the handler
  // read is answered, not dropped.
  req.set_request_id("during");
  const bool written = stream->Write(req);
  v1::ClassifyResponse during;
  const bool answered = written && stream->Read(&during);
  grpc::Status s = stream->Finish();
  stopper.join();
  server_.reset();
  if (answered) {
    EXPECT_EQ(during.request_id(), "during");
    EXPECT_EQ(during.results_size(), 2);
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(ReasonOf(s), "DRAINING");
}

TEST_F(ServerTest, UploadValidation) {
  v1::Dataset ds;
  grpc::Status s = Upload("colours", &ds, /*min_shots=*/8);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(s), "NOT_ENOUGH_SHOTS");
  // Nothing was stored by the failed upload.
  v1::GetDatasetRequest get;
  get.set_name("datasets/colours");
  auto g = Ctx(kAdmin);
  EXPECT_EQ(datasets_->GetDataset(g.get(), get, &ds).error_code(), grpc::StatusCode::NOT_FOUND);
  // A corrupt image and a label out of range, each alone.
  for (int variant = 0; variant < 2; ++variant) {
    auto ctx = Ctx(kAdmin);
    auto w = datasets_->UploadDataset(ctx.get(), &ds);
    v1::UploadDatasetRequest meta;
    meta.mutable_metadata()->set_dataset_id("bad");
    meta.mutable_metadata()->add_class_names("red");
    w->Write(meta);
    v1::UploadDatasetRequest chunk;
    auto* img = chunk.mutable_images()->add_images();
    img->set_label(variant == 0 ? 0 : 5);
    img->set_encoded(variant == 0 ? std::string("\x89PNG\r\n\x1a\ngarbage") : SolidPng(1, 2, 3));
    w->Write(chunk);
    w->WritesDone();
    s = w->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ReasonOf(s), variant == 0 ? "IMAGE_DECODE_FAILED" : "LABEL_OUT_OF_RANGE");
    EXPECT_EQ(FieldOf(s), variant == 0 ? "images[0].encoded" : "images[0].label");
  }
  ASSERT_TRUE(Upload("colours", &ds).ok());
  EXPECT_EQ(ds.stats().num_images(), 24);
  EXPECT_EQ(ds.stats().max_shots(), 4);
  EXPECT_EQ(ds.novel_class_names_size(), 1);
  EXPECT_EQ(Upload("colours", &ds).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(ServerTest, TuneWatchAndServeThePromptSet) {
  v1::Dataset ds;
  ASSERT_TRUE(Upload("colours", &ds).ok());
  v1::TuningJob job;
  {
    v1::TuningJob bad;
    v1::CreateTuningJobRequest req;
    req.mutable_tuning_job()->set_dataset("datasets/colours");
    req.mutable_tuning_job()->mutable_hyperparameters()->set_shots(16);
    auto ctx = Ctx(kAdmin);
    grpc::Status s = jobs_->CreateTuningJob(ctx.get(), req, &bad);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ReasonOf(s), "NOT_ENOUGH_SHOTS");
  }
  ASSERT_TRUE(CreateJob("job1", "datasets/colours", 4, &job, "req-1").ok());
  EXPECT_EQ(job.state(), v1::TuningJob::QUEUED);
  // Same request id: same job.
  v1::TuningJob again;
  ASSERT_TRUE(CreateJob("job1-other", "datasets/colours", 4, &again, "req-1").ok());
  EXPECT_EQ(again.name(), "tuningJobs/job1");
  // Classification stays available while the job trains.
  std::atomic<bool> done{false};
  std::atomic<int> ok_calls{0}, failed_calls{0};
  std::thread classifier([&] {
    while (!done) {
      auto ctx = Ctx(kClient);
      v1::ClassifyResponse resp;
      (classify_->Classify(ctx.get(), ColourRequest({"red", "blue"}), &resp).ok() ? ok_calls
                                                                                  : failed_calls)++;
    }
  });
  // Watch to completion.
  auto ctx = Ctx(kAdmin);
  v1::WatchTuningJobRequest wr;
  wr.set_name("tuningJobs/job1");
  auto reader = jobs_->WatchTuningJob(ctx.get(), wr);
  v1::TuningJobEvent ev;
  std::vector<v1::TuningJobEvent> events;
  while (reader->Read(&ev)) events.push_back(ev);
  EXPECT_TRUE(reader->Finish().ok());
  done = true;
  classifier.join();
  EXPECT_GT(ok_calls.load(), 0);
  EXPECT_EQ(failed_calls.load(), 0);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().type(), v1::TuningJobEvent::SNAPSHOT);
  EXPECT_EQ(events.back().type(), v1::TuningJobEvent::STATE_CHANGED);
  EXPECT_EQ(events.back().state(), v1::TuningJob::SUCCEEDED);
  int64_t last_id = 0;
  int checkpoints = 0;
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].type() == v1::TuningJobEvent::HEARTBEAT) continue;
    EXPECT_GT(events[i].id(), last_id);
    last_id = events[i].id();
    if (events[i].type() == v1::TuningJobEvent::CHECKPOINT) ++checkpoints;
  }
  EXPECT_EQ(checkpoints, 4);
  // Resuming a watch after an event id replays only later events.
  {
    auto c2 = Ctx(kAdmin);
    wr.set_after_event_id(last_id - 1);
    auto r2 = jobs_->WatchTuningJob(c2.get(), wr);
    std::vector<v1::TuningJobEvent> tail;
    while (r2->Read(&ev)) tail.push_back(ev);
    ASSERT_EQ(tail.size(), 2u);  // snapshot + the terminal event
    EXPECT_EQ(tail[1].id(), last_id);
  }
  job = GetJob("job1");
  ASSERT_EQ(job.state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(job.result().prompt_set(), "promptSets/job1");
  EXPECT_DOUBLE_EQ(job.result().evaluation().base_accuracy(), 1.0);
  EXPECT_DOUBLE_EQ(job.result().evaluation().novel_accuracy(), 1.0);
  EXPECT_EQ(job.result().evaluation().num_novel_images(), 2);
  // The prompt set is loaded; its default classes include the novel one.
  v1::ClassifyRequest req;
  req.set_prompt_set("promptSets/job1");
  *req.add_images() = Png(240, 240, 20);
  auto c3 = Ctx(kClient);
  v1::ClassifyResponse resp;
  ASSERT_TRUE(classify_->Classify(c3.get(), req, &resp).ok());
  EXPECT_EQ(resp.class_names_size(), 4);
  EXPECT_EQ(resp.results(0).prediction().labels(0).label(), "yellow");
  // Cancel of a finished job is a failed precondition.
  v1::CancelTuningJobRequest cancel;
  cancel.set_name("tuningJobs/job1");
  auto c4 = Ctx(kAdmin);
  grpc::Status s = jobs_->CancelTuningJob(c4.get(), cancel, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReasonOf(s), "JOB_TERMINAL");
  // Export, then import under another id, unload/load transitions.
  v1::ExportPromptSetRequest ex;
  ex.set_name("promptSets/job1");
  auto c5 = Ctx(kAdmin);
  auto er = prompt_sets_->ExportPromptSet(c5.get(), ex);
  v1::ExportPromptSetResponse part;
  std::string file;
  bool first = true;
  while (er->Read(&part)) {
    if (first) {
      EXPECT_TRUE(part.has_prompt_set());
      first = false;
    } else {
      file += part.chunk();
    }
  }
  ASSERT_TRUE(er->Finish().ok());
  ASSERT_FALSE(file.empty());
  auto c6 = Ctx(kAdmin);
  v1::PromptSet imported;
  auto iw = prompt_sets_->ImportPromptSet(c6.get(), &imported);
  v1::ImportPromptSetRequest im;
  im.mutable_metadata()->set_prompt_set_id("copy");
  iw->Write(im);
  v1::ImportPromptSetRequest chunk;
  chunk.set_chunk(file);
  iw->Write(chunk);
  iw->WritesDone();
  ASSERT_TRUE(iw->Finish().ok());
  EXPECT_EQ(imported.state(), v1::PromptSet::UNLOADED);
  req.set_prompt_set("promptSets/copy");
  auto c7 = Ctx(kClient);
  s = classify_->Classify(c7.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReasonOf(s), "PROMPT_SET_NOT_LOADED");
  v1::LoadPromptSetRequest load;
  load.set_name("promptSets/copy");
  auto c8 = Ctx(kAdmin);
  ASSERT_TRUE(prompt_sets_->LoadPromptSet(c8.get(), load, &imported).ok());
  EXPECT_EQ(imported.state(), v1::PromptSet::ACTIVE);
  auto c9 = Ctx(kClient);
  EXPECT_TRUE(classify_->Classify(c9.get(), req, &resp).ok());
  // Garbage import is refused.
  auto c10 = Ctx(kAdmin);
  auto iw2 = prompt_sets_->ImportPromptSet(c10.get(), &imported);
  im.mutable_metadata()->set_prompt_set_id("junk");
  iw2->Write(im);
  chunk.set_chunk("not a prompt set");
  iw2->Write(chunk);
  iw2->WritesDone();
  s = iw2->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(s), "INVALID_PROMPT_SET_FILE");
}

// An unknown preset or variant is refused by CreateTuningJob itself (with
// the field named), not accepted and then failed when the job runs.
// Issue 13: the W3C traceparent of a CreateTuningJob call is stored on the
// job and reaches every event ListTuningJobEvents and WatchTuningJob show.
TEST_F(ServerTest, TraceparentOfCreateTuningJobReachesTheJobsEvents) {
  v1::Dataset ds;
  ASSERT_TRUE(Upload("traced-ds", &ds).ok());
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  v1::CreateTuningJobRequest req;
  req.set_tuning_job_id("traced");
  req.mutable_tuning_job()->set_dataset("datasets/traced-ds");
  req.mutable_tuning_job()->mutable_hyperparameters()->set_shots(2);
  req.mutable_tuning_job()->mutable_hyperparameters()->set_epochs(2);
  auto ctx = Ctx(kAdmin);
  ctx->AddMetadata("traceparent", tp);
  v1::TuningJob created;
  ASSERT_TRUE(jobs_->CreateTuningJob(ctx.get(), req, &created).ok());
  EXPECT_EQ(created.traceparent(), tp);
  const v1::TuningJob done = WaitFor("traced", v1::TuningJob::SUCCEEDED);
  ASSERT_EQ(done.state(), v1::TuningJob::SUCCEEDED);
  EXPECT_EQ(done.traceparent(), tp);
  const std::vector<v1::TuningJobEvent> events = AllEvents("traced");
  ASSERT_GE(events.size(), 4u);
  for (const auto& ev : events) {
    EXPECT_EQ(ev.traceparent(), tp) << v1::TuningJobEvent::Type_Name(ev.type());
  }
  v1::WatchTuningJobRequest watch;
  watch.set_name("tuningJobs/traced");
  auto wctx = Ctx(kAdmin);
  auto reader = jobs_->WatchTuningJob(wctx.get(), watch);
  v1::TuningJobEvent snapshot;
  ASSERT_TRUE(reader->Read(&snapshot));
  EXPECT_EQ(snapshot.type(), v1::TuningJobEvent::SNAPSHOT);
  EXPECT_EQ(snapshot.traceparent(), tp);
  wctx->TryCancel();

  // Without one (or with a malformed one) there is none.
  ASSERT_TRUE(CreateJob("untraced", "datasets/traced-ds", 1, &created).ok());
  EXPECT_EQ(created.traceparent(), "");
  req.set_tuning_job_id("badly-traced");
  auto bad = Ctx(kAdmin);
  bad->AddMetadata("traceparent", "00-not-a-trace");
  ASSERT_TRUE(jobs_->CreateTuningJob(bad.get(), req, &created).ok());
  EXPECT_EQ(created.traceparent(), "");
  for (const char* id : {"untraced", "badly-traced"}) {
    WaitFor(id, v1::TuningJob::SUCCEEDED);
    for (const auto& ev : AllEvents(id)) EXPECT_EQ(ev.traceparent(), "") << id;
  }
}

TEST_F(ServerTest, UnknownPresetOrVariantIsRejectedAtCreation) {
  v1::Dataset ds;
  ASSERT_TRUE(Upload("colours", &ds).ok());
  struct Case {
    const char* preset;
    const char* variant;
    const char* field;
    double min_crop_scale = 0;  // 0: unset
  };
  const Case cases[] = {
      {"few_shot_3", "", "tuning_job.hyperparameters.preset"},
      {"FEW_SHOT_2", "", "tuning_job.hyperparameters.preset"},
      {"few_shot_8_no_ref", "", "tuning_job.hyperparameters.preset"},
      {"", "provp_reff", "tuning_job.hyperparameters.variant"},
      {"", "", "tuning_job.hyperparameters.min_crop_scale", -0.5},
      {"", "", "tuning_job.hyperparameters.min_crop_scale", 1.5},
      {"", "", "tuning_job.hyperparameters.min_crop_scale", std::nan("")},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    v1::CreateTuningJobRequest req;
    req.set_tuning_job_id(absl::StrCat("bad-", i));
    req.mutable_tuning_job()->set_dataset("datasets/colours");
    auto* hp = req.mutable_tuning_job()->mutable_hyperparameters();
    hp->set_shots(2);
    hp->set_preset(cases[i].preset);
    hp->set_variant(cases[i].variant);
    if (cases[i].min_crop_scale != 0) hp->set_min_crop_scale(cases[i].min_crop_scale);
    v1::TuningJob job;
    auto ctx = Ctx(kAdmin);
    grpc::Status s = jobs_->CreateTuningJob(ctx.get(), req, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "case " << i;
    EXPECT_EQ(ReasonOf(s), "INVALID_HYPERPARAMETER") << "case " << i;
    EXPECT_EQ(FieldOf(s), cases[i].field) << "case " << i;
    if (*cases[i].preset) {
      EXPECT_THAT(s.error_message(), ::testing::HasSubstr(cases[i].preset)) << "case " << i;
      EXPECT_THAT(s.error_message(), ::testing::HasSubstr("few_shot_16")) << "case " << i;
    }
    // Nothing was stored.
    v1::GetTuningJobRequest get;
    get.set_name(absl::StrCat("tuningJobs/bad-", i));
    auto gctx = Ctx(kAdmin);
    EXPECT_EQ(jobs_->GetTuningJob(gctx.get(), get, &job).error_code(), grpc::StatusCode::NOT_FOUND)
        << "case " << i;
  }
  // Every preset name the trainer knows is accepted.
  for (const char* preset : {"few_shot_2", "few_shot_1_no_ref", "base_to_novel", "imagenet"}) {
    v1::CreateTuningJobRequest req;
    req.set_tuning_job_id(absl::StrCat("ok-", preset));
    req.mutable_tuning_job()->set_dataset("datasets/colours");
    req.mutable_tuning_job()->mutable_hyperparameters()->set_shots(2);
    req.mutable_tuning_job()->mutable_hyperparameters()->set_epochs(1);
    req.mutable_tuning_job()->mutable_hyperparameters()->set_preset(preset);
    req.mutable_tuning_job()->mutable_hyperparameters()->set_min_crop_scale(1.0);  // bound is valid
    v1::TuningJob job;
    auto ctx = Ctx(kAdmin);
    grpc::Status s = jobs_->CreateTuningJob(ctx.get(), req, &job);
    EXPECT_TRUE(s.ok()) << preset << ": " << s.error_message();
    if (s.ok())
      WaitFor(job.name().substr(std::string("tuningJobs/").size()), v1::TuningJob::SUCCEEDED);
  }
}

TEST_F(ServerTest, CancelQueueLimitAndListFilter) {
  v1::Dataset ds;
  ASSERT_TRUE(Upload("colours", &ds).ok());
  v1::TuningJob a, b, c, d;
  ASSERT_TRUE(CreateJob("a", "datasets/colours", 500, &a).ok());
  WaitFor("a", v1::TuningJob::RUNNING);
  ASSERT_TRUE(CreateJob("b", "datasets/colours", 500, &b).ok());
  ASSERT_TRUE(CreateJob("c", "datasets/colours", 500, &c).ok());
  grpc::Status s = CreateJob("d", "datasets/colours", 500, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ReasonOf(s), "JOB_QUEUE_FULL");
  EXPECT_EQ(CreateJob("a", "datasets/colours", 5, &d).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  v1::ListTuningJobsRequest list;
  list.set_filter("state=QUEUED");
  v1::ListTuningJobsResponse listed;
  {
    auto ctx = Ctx(kAdmin);
    ASSERT_TRUE(jobs_->ListTuningJobs(ctx.get(), list, &listed).ok());
  }
  EXPECT_EQ(listed.tuning_jobs_size(), 2);
  list.set_filter("state=BOGUS");
  {
    auto ctx = Ctx(kAdmin);
    EXPECT_EQ(jobs_->ListTuningJobs(ctx.get(), list, &listed).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  list.set_filter("");
  list.set_page_size(2);
  {
    auto ctx = Ctx(kAdmin);
    ASSERT_TRUE(jobs_->ListTuningJobs(ctx.get(), list, &listed).ok());
    EXPECT_EQ(listed.tuning_jobs_size(), 2);
    EXPECT_EQ(listed.tuning_jobs(0).name(), "tuningJobs/c");  // newest first
    EXPECT_FALSE(listed.next_page_token().empty());
  }
  for (const char* id : {"b", "a"}) {
    v1::CancelTuningJobRequest cancel;
    cancel.set_name(std::string("tuningJobs/") + id);
    v1::TuningJob out;
    auto ctx = Ctx(kAdmin);
    ASSERT_TRUE(jobs_->CancelTuningJob(ctx.get(), cancel, &out).ok());
  }
  EXPECT_EQ(GetJob("b").state(), v1::TuningJob::CANCELLED);
  EXPECT_EQ(WaitFor("a", v1::TuningJob::CANCELLED).state(), v1::TuningJob::CANCELLED);
  // The queue moves on to c.
  EXPECT_EQ(WaitFor("c", v1::TuningJob::RUNNING).state(), v1::TuningJob::RUNNING);
  v1::DeleteDatasetRequest del;
  del.set_name("datasets/colours");
  v1::DeleteDatasetResponse dr;
  auto ctx = Ctx(kAdmin);
  s = datasets_->DeleteDataset(ctx.get(), del, &dr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReasonOf(s), "DATASET_IN_USE");
}

TEST_F(ServerTest, GracefulRestartResumesTheRunningJob) {
  v1::Dataset ds;
  ASSERT_TRUE(Upload("colours", &ds).ok());
  v1::TuningJob job;
  ASSERT_TRUE(CreateJob("long", "datasets/colours", 30, &job).ok());
  // Wait for at least two epoch checkpoints.
  for (int i = 0; i < 400 && GetJob("long").progress().epoch() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(GetJob("long").progress().epoch(), 2);
  size_t events_before = AllEvents("long").size();
  StopServer();
  StartServer();
  v1::TuningJob done = WaitFor("long", v1::TuningJob::SUCCEEDED);
  ASSERT_EQ(done.state(), v1::TuningJob::SUCCEEDED);
  std::vector<v1::TuningJobEvent> events = AllEvents("long");
  EXPECT_GT(events.size(), events_before);
  bool resumed = false;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].id(), static_cast<int64_t>(i + 1));
    if (events[i].message().find("resumed from checkpoint") != std::string::npos) resumed = true;
  }
  EXPECT_TRUE(resumed);
  // The resumed run did not start over: fewer CHECKPOINT events than 2x30.
  int checkpoints = 0;
  for (const auto& e : events) checkpoints += e.type() == v1::TuningJobEvent::CHECKPOINT;
  EXPECT_EQ(checkpoints, 30);
}

// Issue 14: a SIGKILL in the middle of an upload, an import or an atomic
// write leaves staging folders and temporary files that no record points
// at; the next start removes them and keeps everything the API knows.
TEST_F(ServerTest, Issue14CrashLeftoversAreSweptAtStart) {
  v1::Dataset ds;
  ASSERT_TRUE(Upload("colours", &ds).ok());
  StopServer();
  namespace fs = std::filesystem;
  const fs::path data = dir_.path() + "/data";
  auto touch = [](const fs::path& p, const std::string& bytes) {
    fs::create_directories(p.parent_path());
    FILE* f = fopen(p.c_str(), "wb");
    fwrite(bytes.data(), 1, bytes.size(), f);
    fclose(f);
  };
  // What a kill leaves: an upload's staging folder with images, an import's
  // staging file, and atomic-write temporaries (a manifest, a prompt set).
  const fs::path staging = data / "datasets" / ".upload-pets-0badc0de";
  touch(staging / "000001.png", SolidPng(1, 2, 3));
  touch(staging / "manifest.json.provp-tmp-4242-0a0b0c0d", "{\"class");
  touch(data / "prompt_sets" / ".import-deadbeef", "half a prompt set");
  touch(data / "datasets" / "colours" / "manifest.json.provp-tmp-77-00ff00ff", "{");
  touch(data / "jobs" / "some-job" / "epoch.ckpt.provp-tmp-9-1234abcd", "partial");
  // Look-alikes that are not leftovers stay.
  touch(data / "datasets" / "colours" / "notes.provp-tmp.txt", "mine");

  StartServer();
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_FALSE(fs::exists(data / "prompt_sets" / ".import-deadbeef"));
  EXPECT_FALSE(fs::exists(data / "datasets" / "colours" / "manifest.json.provp-tmp-77-00ff00ff"));
  EXPECT_FALSE(fs::exists(data / "jobs" / "some-job" / "epoch.ckpt.provp-tmp-9-1234abcd"));
  EXPECT_TRUE(fs::exists(data / "datasets" / "colours" / "notes.provp-tmp.txt"));
  // The dataset the API knows is intact (its manifest in the file store,
  // under data/blobs by default) and a new upload works.
  v1::GetDatasetRequest get;
  get.set_name("datasets/colours");
  auto g = Ctx(kAdmin);
  ASSERT_TRUE(datasets_->GetDataset(g.get(), get, &ds).ok());
  EXPECT_EQ(ds.stats().num_images(), 24);
  ASSERT_EQ(ds.manifest_key().rfind("sha256:", 0), 0u) << ds.manifest_key();
  EXPECT_TRUE(fs::exists(data / "blobs" / "sha256" / ds.manifest_key().substr(7, 2) /
                         ds.manifest_key().substr(7)));
  ASSERT_TRUE(Upload("colours2", &ds).ok());
}

}  // namespace
}  // namespace provp::server
