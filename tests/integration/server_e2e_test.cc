// The real provp-server binary with the tiny CLIP fixture (LibTorch
// engine), started on 127.0.0.1 port 0 (--port-file) and driven over gRPC:
// zero-shot classification, a dataset upload, a tuning job watched to
// completion while clients classify, the resulting prompt set on base and
// novel classes, SIGKILL mid-job with a restart that resumes the job with
// its events intact, SIGTERM draining to exit code 0, and SIGKILLs at
// random moments of uploads, imports, checkpoints and prompt-set writes
// after which a restart leaves the data folder as it was (issue 14).
// Skips when the fixture is unavailable (provp-server itself is built only
// with the LibTorch engine).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
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
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    server_ = std::make_unique<ServerProcess>(args, dir_.path() + "/port");
    ASSERT_TRUE(server_->Start(dir_.path() + "/server.log"))
        << "server did not start; see " << dir_.path() << "/server.log";
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    classify_ = v1::ClassificationService::NewStub(channel_);
    datasets_ = v1::DatasetService::NewStub(channel_);
    jobs_ = v1::TuningService::NewStub(channel_);
    prompt_sets_ = v1::PromptSetService::NewStub(channel_);
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

  grpc::Status CreateJob(const std::string& id, int epochs, int64_t seed = 1) {
    v1::CreateTuningJobRequest req;
    req.set_tuning_job_id(id);
    auto* j = req.mutable_tuning_job();
    j->set_dataset("datasets/colours");
    j->mutable_hyperparameters()->set_shots(4);
    j->mutable_hyperparameters()->set_epochs(epochs);
    j->mutable_hyperparameters()->set_num_prompts(4);
    j->mutable_hyperparameters()->set_batch_size(4);
    j->mutable_hyperparameters()->set_seed(seed);
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

  // Job states a wait ends on.
  static bool Ended(const v1::TuningJob& job) {
    return job.state() == v1::TuningJob::SUCCEEDED || job.state() == v1::TuningJob::FAILED ||
           job.state() == v1::TuningJob::CANCELLED;
  }

  v1::TuningJob WaitJob(const std::string& id) {
    v1::TuningJob job;
    for (int i = 0; i < 6000; ++i) {
      job = GetJob(id);
      if (Ended(job)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return job;
  }

  std::string ExportPromptSet(const std::string& id) {
    v1::ExportPromptSetRequest req;
    req.set_name("promptSets/" + id);
    auto ctx = Ctx(kAdmin);
    auto reader = prompt_sets_->ExportPromptSet(ctx.get(), req);
    v1::ExportPromptSetResponse msg;
    std::string file;
    while (reader->Read(&msg)) {
      if (msg.has_chunk()) file += msg.chunk();
    }
    return reader->Finish().ok() ? file : std::string();
  }

  grpc::Status ImportPromptSet(const std::string& id, const std::string& file) {
    auto ctx = Ctx(kAdmin, 60);
    v1::PromptSet ps;
    auto w = prompt_sets_->ImportPromptSet(ctx.get(), &ps);
    v1::ImportPromptSetRequest meta;
    meta.mutable_metadata()->set_prompt_set_id(id);
    w->Write(meta);
    for (size_t off = 0; off < file.size(); off += 4096) {
      v1::ImportPromptSetRequest chunk;
      chunk.set_chunk(file.substr(off, 4096));
      if (!w->Write(chunk)) break;
    }
    w->WritesDone();
    return w->Finish();
  }

  std::vector<std::string> extra_args_;
  TempDir dir_;
  std::string model_, vocab_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ClassificationService::Stub> classify_;
  std::unique_ptr<v1::DatasetService::Stub> datasets_;
  std::unique_ptr<v1::TuningService::Stub> jobs_;
  std::unique_ptr<v1::PromptSetService::Stub> prompt_sets_;
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

// Issue 11: one server holding 20 prompt sets (five trained ones, each
// imported four times) answers concurrent clients whose requests pick any
// of them or none (zero-shot), with the batcher free to put them in one
// execution (mixed-prompt-set batches), exactly as it answers each request
// alone.
TEST_F(E2ETest, TwentyPromptSetsAndZeroShotServedTogether) {
  server_->Kill(SIGKILL);
  // A long batching window so that concurrent requests share executions.
  extra_args_ = {"--max-queue-delay-us=20000", "--max-batch-size=64"};
  Launch();
  ASSERT_TRUE(Upload("colours").ok());
  constexpr int kTrained = 5, kCopies = 4;
  for (int t = 0; t < kTrained; ++t) {
    ASSERT_TRUE(CreateJob(absl::StrCat("t", t), 1 + t, 11 + t).ok());
  }
  std::vector<std::string> ids;  // "" = zero-shot
  ids.push_back("");
  for (int t = 0; t < kTrained; ++t) {
    v1::TuningJob job = WaitJob(absl::StrCat("t", t));
    ASSERT_EQ(job.state(), v1::TuningJob::SUCCEEDED) << job.error().message();
    const std::string file = ExportPromptSet(absl::StrCat("t", t));
    ASSERT_FALSE(file.empty());
    for (int c = 0; c < kCopies; ++c) {
      const std::string id = absl::StrCat("set-", t, "-", c);
      grpc::Status s = ImportPromptSet(id, file);
      ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
      v1::LoadPromptSetRequest load;
      load.set_name("promptSets/" + id);
      v1::PromptSet ps;
      auto ctx = Ctx(kAdmin);
      s = prompt_sets_->LoadPromptSet(ctx.get(), load, &ps);
      ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
      ids.push_back(id);
    }
  }
  ASSERT_EQ(ids.size(), 1u + kTrained * kCopies);
  const std::vector<std::string> names = {"red", "green", "blue", "violet"};
  auto request = [&](size_t k) {
    v1::ClassifyRequest req = Request(names, ids[k].empty() ? "" : "promptSets/" + ids[k]);
    req.set_request_id(absl::StrCat("k", k));
    return req;
  };
  // Each set alone: one request in flight, so its execution holds only it.
  std::vector<v1::ClassifyResponse> alone(ids.size());
  for (size_t k = 0; k < ids.size(); ++k) {
    auto ctx = Ctx(kAdmin);
    grpc::Status s = classify_->Classify(ctx.get(), request(k), &alone[k]);
    ASSERT_TRUE(s.ok()) << ids[k] << ": " << s.error_message();
    ASSERT_EQ(alone[k].results(0).timing().batch_size(), 2);
  }
  // Trained sets differ from zero-shot and from each other.
  auto score = [](const v1::ClassifyResponse& r, int image, int c) {
    return r.results(image).prediction().all_scores(c);
  };
  EXPECT_NE(score(alone[0], 0, 0), score(alone[1], 0, 0));
  EXPECT_NE(score(alone[1], 0, 0), score(alone[1 + kCopies], 0, 0));
  // Now all together from 8 clients.
  constexpr int kClients = 8, kPerClient = 30;
  std::atomic<int> compared{0}, shared{0}, failed{0};
  std::mutex mu;
  std::vector<std::string> mismatches;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(static_cast<uint32_t>(c));
      for (int i = 0; i < kPerClient; ++i) {
        const size_t k = rng() % ids.size();
        auto ctx = Ctx(kAdmin);
        v1::ClassifyResponse r;
        if (!classify_->Classify(ctx.get(), request(k), &r).ok()) {
          ++failed;
          continue;
        }
        if (r.results(0).timing().batch_size() > 2) ++shared;
        for (int image = 0; image < 2; ++image) {
          for (int cls = 0; cls < static_cast<int>(names.size()); ++cls) {
            const float want = score(alone[k], image, cls);
            const float got = score(r, image, cls);
            if (std::abs(want - got) > 1e-4f) {
              std::lock_guard<std::mutex> lock(mu);
              mismatches.push_back(absl::StrCat("set '", ids[k], "' image ", image, " class ", cls,
                                                ": ", got, " together, ", want, " alone"));
            }
          }
        }
        ++compared;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(compared.load(), kClients * kPerClient);
  EXPECT_TRUE(mismatches.empty()) << mismatches.size()
                                  << " scores differ, first: " << mismatches.front();
  // The batcher did put requests together (most of them, with 8 clients
  // and a 20 ms window).
  EXPECT_GT(shared.load(), kClients * kPerClient / 4);
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

// Every file under `root` (relative path -> size), apart from the SQLite
// store itself (state.db and its journal files), whose pages change with
// any write and whose consistency is SQLite's to keep. Folders are not
// listed: the file store's 256 fan-out folders (blobs/sha256/xx/) stay once
// made, as git's objects/xx/ do.
std::map<std::string, uintmax_t> FilesUnder(const std::string& root) {
  namespace fs = std::filesystem;
  std::map<std::string, uintmax_t> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (rel.rfind("state.db", 0) == 0) continue;
    if (!it->is_directory()) files[rel] = it->is_regular_file() ? it->file_size() : 0;
  }
  return files;
}

std::string Diff(const std::map<std::string, uintmax_t>& before,
                 const std::map<std::string, uintmax_t>& after) {
  std::string out;
  for (const auto& [path, size] : after) {
    auto it = before.find(path);
    if (it == before.end())
      absl::StrAppend(&out, "\n  left behind: ", path, " (", size, " B)");
    else if (it->second != size)
      absl::StrAppend(&out, "\n  changed: ", path);
  }
  for (const auto& [path, size] : before) {
    if (!after.count(path)) absl::StrAppend(&out, "\n  lost: ", path);
  }
  return out;
}

// SIGKILL at random moments of the four kinds of write a crash can cut
// short (an upload's images and manifest, an imported prompt-set file, a
// job's per-epoch checkpoints and its final prompt-set file), then a
// restart. Whatever the kill interrupted either finished (then deleting it
// through the API frees its files) or never happened: either way the data
// folder must be file for file what it was before the write began. A job
// cut short resumes after the restart and its checkpoints go when it ends.
// The seed is printed so that a failure can be replayed (PROVP_KILL_SEED).
TEST_F(E2ETest, RandomSigkillsLeaveTheDataFolderAsItWas) {
  const char* seed_env = std::getenv("PROVP_KILL_SEED");
  const uint32_t seed = seed_env ? static_cast<uint32_t>(std::stoul(seed_env))
                                 : static_cast<uint32_t>(std::random_device{}());
  std::mt19937 rng(seed);
  RecordProperty("kill_seed", std::to_string(seed));
  std::printf("kill seed %u (PROVP_KILL_SEED=%u replays it)\n", seed, seed);
  const std::string data = dir_.path() + "/data";
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
  };
  auto delete_prompt_set = [&](const std::string& id) {
    v1::DeletePromptSetRequest req;
    req.set_name("promptSets/" + id);
    v1::DeletePromptSetResponse resp;
    auto ctx = Ctx(kAdmin);
    return prompt_sets_->DeletePromptSet(ctx.get(), req, &resp);
  };

  // The folder the trials start from: a dataset and one finished job whose
  // prompt-set file is kept (exported) for the import trials and then
  // deleted, so that an import stores a file no record shares.
  ASSERT_TRUE(Upload("colours").ok());
  auto t0 = Clock::now();
  ASSERT_TRUE(CreateJob("source", 30).ok());
  ASSERT_EQ(WaitJob("source").state(), v1::TuningJob::SUCCEEDED);
  const int64_t job_ms = ms_since(t0);
  // Empty when the export failed.
  const std::string file = ExportPromptSet("source");
  ASSERT_FALSE(file.empty());
  ASSERT_TRUE(delete_prompt_set("source").ok());

  // An upload of 384 images of 64 px in 16 messages, distinct from the
  // "colours" images so that none of its files is shared.
  auto upload = [&](const std::string& id, int trial) {
    auto ctx = Ctx(kAdmin, 60);
    v1::Dataset ds;
    auto w = datasets_->UploadDataset(ctx.get(), &ds);
    v1::UploadDatasetRequest meta;
    for (const char* n : {"red", "green", "blue"}) meta.mutable_metadata()->add_class_names(n);
    meta.mutable_metadata()->set_dataset_id(id);
    w->Write(meta);
    for (int m = 0; m < 16; ++m) {
      v1::UploadDatasetRequest chunk;
      for (int i = 0; i < 24; ++i) {
        const int c = i % 3;
        auto* img = chunk.mutable_images()->add_images();
        img->set_label(c);
        img->set_encoded(SolidPng(c == 0 ? 200 : 30, c == 1 ? 200 : 30, c == 2 ? 200 : 30, 64,
                                  1000 * trial + 24 * m + i));
        img->set_split(i < 16 ? v1::TRAIN : v1::TEST);
      }
      if (!w->Write(chunk)) break;
    }
    w->WritesDone();
    return w->Finish();
  };
  auto import = [&](const std::string& id) { return ImportPromptSet(id, file); };
  t0 = Clock::now();
  ASSERT_TRUE(upload("timing", 0).ok());
  const int64_t upload_ms = std::max<int64_t>(ms_since(t0), 20);
  {
    v1::DeleteDatasetRequest req;
    req.set_name("datasets/timing");
    v1::DeleteDatasetResponse resp;
    auto ctx = Ctx(kAdmin);
    ASSERT_TRUE(datasets_->DeleteDataset(ctx.get(), req, &resp).ok());
  }
  t0 = Clock::now();
  ASSERT_TRUE(import("timing").ok());
  const int64_t import_ms = std::max<int64_t>(ms_since(t0), 5);
  ASSERT_TRUE(delete_prompt_set("timing").ok());
  const auto before = FilesUnder(data);
  ASSERT_FALSE(before.empty());

  enum Kind { kUpload, kImport, kJob };
  const char* kind_names[] = {"upload", "import", "job"};
  const int64_t duration_ms[] = {upload_ms, import_ms, job_ms};
  // 8 of each kind; PROVP_KILL_TRIALS=N runs N in all (a longer search).
  const char* trials_env = std::getenv("PROVP_KILL_TRIALS");
  const int trials = trials_env ? std::max(3, std::atoi(trials_env)) : 24;
  int cut_short[3] = {0, 0, 0}, finished[3] = {0, 0, 0};
  for (int trial = 1; trial <= trials; ++trial) {
    const Kind kind = static_cast<Kind>(trial % 3);
    const std::string id = absl::StrCat(kind_names[kind], "-", trial);
    // Anywhere from the first byte to a little after the usual end.
    const int64_t delay_ms =
        std::uniform_int_distribution<int64_t>(0, duration_ms[kind] * 6 / 5)(rng);
    SCOPED_TRACE(absl::StrCat("trial ", trial, ": SIGKILL ", delay_ms, " ms into ",
                              kind_names[kind], " ", id, " (seed ", seed, ")"));
    std::thread op([&, kind, id, trial] {
      if (kind == kUpload) upload(id, trial);
      if (kind == kImport) import(id);
      if (kind == kJob) CreateJob(id, 30);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    server_->Kill(SIGKILL);
    op.join();
    Launch();
    bool done = false;
    if (kind == kUpload) {
      v1::GetDatasetRequest req;
      req.set_name("datasets/" + id);
      v1::Dataset ds;
      auto ctx = Ctx(kAdmin);
      done = datasets_->GetDataset(ctx.get(), req, &ds).ok();
      if (done) {
        EXPECT_EQ(ds.stats().num_images(), 384);
        v1::DeleteDatasetRequest del;
        del.set_name(req.name());
        v1::DeleteDatasetResponse resp;
        auto c2 = Ctx(kAdmin);
        EXPECT_TRUE(datasets_->DeleteDataset(c2.get(), del, &resp).ok());
      }
    } else if (kind == kImport) {
      done = delete_prompt_set(id).ok();
    } else {
      v1::TuningJob job = GetJob(id);
      if (!job.name().empty()) {
        // Created before the kill: it resumes and ends here.
        job = WaitJob(id);
        EXPECT_EQ(job.state(), v1::TuningJob::SUCCEEDED) << job.error().message();
        done = job.restart_count() == 0;
        EXPECT_TRUE(delete_prompt_set(id).ok());
      }
    }
    ++(done ? finished : cut_short)[kind];
    const auto after = FilesUnder(data);
    EXPECT_TRUE(after == before) << Diff(before, after);
  }
  std::printf(
      "%d trials. upload (%lld ms): %d cut short, %d finished; import (%lld ms): %d / %d; "
      "job (%lld ms): %d / %d\n",
      trials, static_cast<long long>(upload_ms), cut_short[kUpload], finished[kUpload],
      static_cast<long long>(import_ms), cut_short[kImport], finished[kImport],
      static_cast<long long>(job_ms), cut_short[kJob], finished[kJob]);
}

// The product binary serves only with the LibTorch engine: the test fake
// and its --engine flag are gone, so the flag is a usage error.
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
