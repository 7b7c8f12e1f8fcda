// The real provp-server binary with the tiny CLIP fixture (LibTorch
// engine), started on 127.0.0.1 port 0 (--port-file) and driven over gRPC:
// zero-shot classification, a dataset upload, a tuning job watched to
// completion while clients classify, the resulting prompt set on base and
// novel classes, SIGKILL mid-job with a restart that resumes the job with
// its events intact, SIGTERM draining to exit code 0, and 20 imported
// prompt sets plus zero-shot classified concurrently in mixed batches, each
// result equal to its single-set one.
// Skips when the fixture is unavailable (provp-server itself is built only
// with the LibTorch engine).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "core/train/prompt_set.h"
#include "gtest/gtest.h"
#include "provp/v1/classification.grpc.pb.h"
#include "provp/v1/dataset.grpc.pb.h"
#include "provp/v1/prompt_set.grpc.pb.h"
#include "provp/v1/tuning.grpc.pb.h"
#include "tests/integration/server_test_util.h"
#include "tests/testing/test_paths.h"

namespace provp::server {
namespace {

using ::provp::testing::Ctx;
using ::provp::testing::ReasonOf;
using ::provp::testing::SolidPng;
using ::provp::testing::TempDir;

constexpr char kAdmin[] = "admin-key-e2e-0001";

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

class ServerProcess {
 public:
  ServerProcess(std::vector<std::string> args, std::string port_file)
      : args_(std::move(args)), port_file_(std::move(port_file)) {}
  ~ServerProcess() { Kill(SIGKILL); }

  // Starts the binary and waits for the port file (SERVING).
  bool Start(const std::string& log_path) {
    unlink(port_file_.c_str());
    pid_ = fork();
    if (pid_ == 0) {
      FILE* log = fopen(log_path.c_str(), "a");
      if (log) {
        dup2(fileno(log), 1);
        dup2(fileno(log), 2);
      }
      std::vector<char*> argv;
      for (auto& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 1200; ++i) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port && port > 0) {
        port_ = port;
        return true;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Sends `sig` and returns the exit status (-1 when not running).
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  int port() const { return port_; }

 private:
  std::vector<std::string> args_;
  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class E2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = provp::testing::SharedDir() + "/fixtures/tiny/openai.safetensors";
    vocab_ = provp::testing::SharedDir() + "/clip/bpe_simple_vocab_16e6.txt.gz";
    if (!Exists(model_) || !Exists(vocab_)) GTEST_SKIP() << "tiny CLIP fixture not found";
    std::ofstream(dir_.path() + "/keys") << "admin " << kAdmin << "\n";
    Launch();
  }

  void Launch() {
    std::vector<std::string> args = {PROVP_SERVER_BINARY,
                                     "--model=" + model_,
                                     "--vocab=" + vocab_,
                                     "--listen=127.0.0.1:0",
                                     "--port-file=" + dir_.path() + "/port",
                                     "--data-dir=" + dir_.path() + "/data",
                                     "--api-keys=" + dir_.path() + "/keys",
                                     "--torch-threads=1",
                                     "--log-format=json"};
    server_ = std::make_unique<ServerProcess>(args, dir_.path() + "/port");
    ASSERT_TRUE(server_->Start(dir_.path() + "/server.log"))
        << "server did not start; see " << dir_.path() << "/server.log";
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    classify_ = v1::ClassificationService::NewStub(channel_);
    datasets_ = v1::DatasetService::NewStub(channel_);
    jobs_ = v1::TuningService::NewStub(channel_);
  }

  grpc::Status Upload(const std::string& id) {
    auto ctx = Ctx(kAdmin, 120);
    v1::Dataset ds;
    auto w = datasets_->UploadDataset(ctx.get(), &ds);
    v1::UploadDatasetRequest meta;
    for (const char* n : {"red", "green", "blue"}) meta.mutable_metadata()->add_class_names(n);
    meta.mutable_metadata()->set_dataset_id(id);
    meta.mutable_metadata()->add_novel_class_names("blue");
    w->Write(meta);
    const uint8_t colours[3][3] = {{240, 20, 20}, {20, 240, 20}, {20, 20, 240}};
    v1::UploadDatasetRequest chunk;
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 6; ++i) {
        auto* img = chunk.mutable_images()->add_images();
        img->set_label(c);
        img->set_encoded(SolidPng(colours[c][0], colours[c][1], colours[c][2], 40, i));
        img->set_split(i < 4 ? v1::TRAIN : v1::TEST);
      }
    }
    w->Write(chunk);
    w->WritesDone();
    return w->Finish();
  }

  grpc::Status CreateJob(const std::string& id, int epochs) {
    v1::CreateTuningJobRequest req;
    req.set_tuning_job_id(id);
    auto* j = req.mutable_tuning_job();
    j->set_dataset("datasets/colours");
    j->mutable_hyperparameters()->set_shots(4);
    j->mutable_hyperparameters()->set_epochs(epochs);
    j->mutable_hyperparameters()->set_num_prompts(4);
    j->mutable_hyperparameters()->set_batch_size(4);
    v1::TuningJob job;
    auto ctx = Ctx(kAdmin);
    return jobs_->CreateTuningJob(ctx.get(), req, &job);
  }

  v1::TuningJob GetJob(const std::string& id) {
    v1::GetTuningJobRequest req;
    req.set_name("tuningJobs/" + id);
    v1::TuningJob job;
    auto ctx = Ctx(kAdmin);
    jobs_->GetTuningJob(ctx.get(), req, &job);
    return job;
  }

  v1::ClassifyRequest Request(std::vector<std::string> names, const std::string& ps = "") {
    v1::ClassifyRequest req;
    req.set_prompt_set(ps);
    for (auto& n : names) req.mutable_inline_classes()->add_names(n);
    req.add_images()->set_encoded(SolidPng(240, 20, 20, 48));
    req.add_images()->set_encoded(SolidPng(20, 20, 240, 24));
    req.set_return_all_scores(true);
    return req;
  }

  TempDir dir_;
  std::string model_, vocab_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ClassificationService::Stub> classify_;
  std::unique_ptr<v1::DatasetService::Stub> datasets_;
  std::unique_ptr<v1::TuningService::Stub> jobs_;
};

TEST_F(E2ETest, ZeroShotTuneServeAndSigterm) {
  v1::ClassifyResponse resp;
  {
    auto ctx = Ctx(kAdmin);
    grpc::Status s = classify_->Classify(ctx.get(), Request({"red", "green", "blue"}), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.results_size(), 2);
    float sum = 0;
    for (float p : resp.results(0).prediction().all_scores()) sum += p;
    EXPECT_NEAR(sum, 1.0f, 1e-4);
  }
  ASSERT_TRUE(Upload("colours").ok());
  ASSERT_TRUE(CreateJob("tune", 3).ok());
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, bad{0};
  std::thread client([&] {
    while (!done) {
      auto ctx = Ctx(kAdmin);
      v1::ClassifyResponse r;
      (classify_->Classify(ctx.get(), Request({"cat", "dog"}), &r).ok() ? ok : bad)++;
    }
  });
  auto ctx = Ctx(kAdmin, 300);
  v1::WatchTuningJobRequest wr;
  wr.set_name("tuningJobs/tune");
  auto reader = jobs_->WatchTuningJob(ctx.get(), wr);
  v1::TuningJobEvent ev, last;
  int metrics = 0;
  while (reader->Read(&ev)) {
    last = ev;
    metrics +=
        ev.type() == v1::TuningJobEvent::METRICS || ev.type() == v1::TuningJobEvent::CHECKPOINT;
  }
  EXPECT_TRUE(reader->Finish().ok());
  done = true;
  client.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(metrics, 3);
  ASSERT_EQ(last.state(), v1::TuningJob::SUCCEEDED) << last.DebugString();
  v1::TuningJob job = GetJob("tune");
  EXPECT_EQ(job.result().prompt_set(), "promptSets/tune");
  EXPECT_EQ(job.result().evaluation().num_base_images(), 4);
  EXPECT_EQ(job.result().evaluation().num_novel_images(), 2);
  // Base classes, novel class, and both through the prompt set.
  for (auto names : std::vector<std::vector<std::string>>{
           {"red", "green"}, {"blue"}, {"red", "green", "blue", "violet"}}) {
    auto c = Ctx(kAdmin);
    grpc::Status s = classify_->Classify(c.get(), Request(names, "promptSets/tune"), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.results(0).prediction().all_scores_size(), static_cast<int>(names.size()));
  }
  {  // Default classes: the prompt set's base + novel.
    v1::ClassifyRequest req = Request({}, "promptSets/tune");
    req.clear_inline_classes();
    auto c = Ctx(kAdmin);
    ASSERT_TRUE(classify_->Classify(c.get(), req, &resp).ok());
    EXPECT_EQ(resp.class_names_size(), 3);
  }
  int status = server_->Kill(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(E2ETest, SigkillMidJobResumesAfterRestart) {
  ASSERT_TRUE(Upload("colours").ok());
  ASSERT_TRUE(CreateJob("crash", 100).ok());
  // Wait for the first epoch checkpoint.
  for (int i = 0; i < 600 && GetJob("crash").progress().epoch() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(GetJob("crash").progress().epoch(), 1);
  server_->Kill(SIGKILL);
  Launch();
  // The job resumes and finishes; its history is intact.
  v1::TuningJob job;
  for (int i = 0; i < 1800; ++i) {
    job = GetJob("crash");
    if (job.state() == v1::TuningJob::SUCCEEDED || job.state() == v1::TuningJob::FAILED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(job.state(), v1::TuningJob::SUCCEEDED) << job.error().message();
  EXPECT_EQ(job.restart_count(), 1);
  v1::ListTuningJobEventsRequest req;
  req.set_name("tuningJobs/crash");
  req.set_page_size(1000);
  v1::ListTuningJobEventsResponse events;
  auto ctx = Ctx(kAdmin);
  ASSERT_TRUE(jobs_->ListTuningJobEvents(ctx.get(), req, &events).ok());
  bool restarted = false, resumed = false;
  for (int i = 0; i < events.events_size(); ++i) {
    const auto& e = events.events(i);
    EXPECT_EQ(e.id(), i + 1);
    restarted |= e.type() == v1::TuningJobEvent::SERVER_RESTARTED;
    resumed |= e.message().find("resumed from the checkpoint") != std::string::npos;
  }
  EXPECT_TRUE(restarted);
  EXPECT_TRUE(resumed);
  // The prompt set survives a further restart.
  server_->Kill(SIGTERM);
  Launch();
  auto c2 = Ctx(kAdmin);
  v1::ClassifyResponse resp;
  EXPECT_TRUE(
      classify_->Classify(c2.get(), Request({"red", "blue"}, "promptSets/crash"), &resp).ok());
}

// The product binary serves only with the LibTorch engine: the test fake
// and its --engine flag are gone, so the flag is a usage error.
// Writes a random prompt set for the tiny fixture (vision width 128, two
// layers) with no backbone fingerprint (accepted as imported prompts).
std::string RandomPromptSetBytes(const std::string& dir, int i) {
  train::PromptSet set;
  torch::manual_seed(100 + i);
  const int64_t m = i % 2 == 0 ? 4 : 6;  // two prompt shapes
  set.prompts = torch::rand({2, m, 128}) * 0.4 - 0.2;
  set.info.model.num_prompts = m;
  set.info.model.depth = 2;
  set.info.model.alpha = i % 3 == 0 ? 0.2 : 0.01;
  set.info.class_names = {"red", "green", "blue"};
  set.info.templates = {"a photo of a {}."};
  set.info.vision_width = 128;
  set.info.vision_layers = 2;
  const std::string path = absl::StrCat(dir, "/set", i, ".pset");
  EXPECT_TRUE(train::SavePromptSet(path, set).ok());
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Concurrent clients over 20 prompt sets and zero-shot: the batcher mixes
// them in one execution, and every image's scores equal those of the same
// request sent alone.
TEST_F(E2ETest, MixedPromptSetsConcurrentlyEqualSingleSetResults) {
  auto prompt_sets = v1::PromptSetService::NewStub(channel_);
  std::vector<std::string> sets = {""};
  for (int i = 0; i < 20; ++i) {
    const std::string id = absl::StrCat("mixed-", i);
    auto ctx = Ctx(kAdmin, 60);
    v1::PromptSet out;
    auto w = prompt_sets->ImportPromptSet(ctx.get(), &out);
    v1::ImportPromptSetRequest meta;
    meta.mutable_metadata()->set_prompt_set_id(id);
    meta.mutable_metadata()->set_load(true);
    ASSERT_TRUE(w->Write(meta));
    v1::ImportPromptSetRequest chunk;
    chunk.set_chunk(RandomPromptSetBytes(dir_.path(), i));
    ASSERT_TRUE(w->Write(chunk));
    w->WritesDone();
    grpc::Status st = w->Finish();
    ASSERT_TRUE(st.ok()) << id << ": " << st.error_message();
    sets.push_back("promptSets/" + id);
  }
  auto classify = [&](const std::string& set, v1::ClassifyResponse* resp) {
    auto ctx = Ctx(kAdmin, 120);
    return classify_->Classify(ctx.get(), Request({"red", "green", "blue"}, set), resp);
  };
  std::map<std::string, v1::ClassifyResponse> alone;
  for (const std::string& set : sets) {
    grpc::Status st = classify(set, &alone[set]);
    ASSERT_TRUE(st.ok()) << set << ": " << st.error_message();
  }
  // The prompt sets matter: not every set gives zero-shot's scores.
  int differ = 0;
  for (const std::string& set : sets) {
    const auto& a = alone[set].results(0).prediction().all_scores();
    const auto& z = alone[""].results(0).prediction().all_scores();
    for (int c = 0; c < a.size(); ++c) differ += std::abs(a[c] - z[c]) > 1e-4 ? 1 : 0;
  }
  EXPECT_GT(differ, 0);
  std::mutex mu;
  std::vector<std::string> failures;
  int max_batch = 0;
  std::vector<std::thread> clients;
  for (int t = 0; t < 7; ++t) {
    clients.emplace_back([&, t] {
      for (int k = 0; k < 2 * static_cast<int>(sets.size()); ++k) {
        const std::string& set = sets[(t * 5 + k * 3) % sets.size()];
        v1::ClassifyResponse resp;
        grpc::Status st = classify(set, &resp);
        std::lock_guard<std::mutex> lock(mu);
        if (!st.ok()) {
          failures.push_back(set + ": " + st.error_message());
          continue;
        }
        for (int i = 0; i < resp.results_size(); ++i) {
          max_batch = std::max(max_batch, resp.results(i).timing().batch_size());
          const auto& got = resp.results(i).prediction().all_scores();
          const auto& want = alone[set].results(i).prediction().all_scores();
          for (int c = 0; c < want.size(); ++c) {
            if (got.size() != want.size() || std::abs(got[c] - want[c]) > 1e-5) {
              failures.push_back(
                  absl::StrCat(set, " image ", i, " class ", c, ": ", got[c], " alone ", want[c]));
              break;
            }
          }
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " mismatches, first: " << failures[0];
  // Some execution carried more than one request (2 images each).
  EXPECT_GT(max_batch, 2);
}

TEST(ServerBinaryTest, HasNoEngineFlag) {
  for (const char* arg : {"--engine=fake", "--fake-step-ms=5"}) {
    std::string cmd = absl::StrCat(PROVP_SERVER_BINARY, " ", arg, " --listen=127.0.0.1:0 2>&1");
    FILE* out = popen(cmd.c_str(), "r");
    ASSERT_NE(out, nullptr);
    std::string text;
    char buf[512];
    while (fgets(buf, sizeof(buf), out) != nullptr) text += buf;
    int status = pclose(out);
    ASSERT_TRUE(WIFEXITED(status)) << text;
    EXPECT_NE(WEXITSTATUS(status), 0) << text;
    EXPECT_NE(text.find(arg), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace provp::server
