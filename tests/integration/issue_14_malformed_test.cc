// Issue 14: a request message that does not parse (invalid UTF-8 in a
// string field, a truncated message, a known field with the wrong wire
// type) is answered INVALID_ARGUMENT, reason MALFORMED_MESSAGE, with the
// field in BadRequest, by provp's own code: the x-request-id initial
// metadata, a log line with that id and the RPC metrics, like every other
// refusal. Before, gRPC's deserializer answered INTERNAL with an empty
// message and provp never saw the call. A real grpc::Server on 127.0.0.1:0
// with the fake engine; raw bytes go out through grpc::GenericStub, for the
// unary Classify and CreateTuningJob, the client-streamed UploadDataset and
// the bidi StreamClassify.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "provp/v1/classification.pb.h"
#include "provp/v1/dataset.pb.h"
#include "provp/v1/tuning.pb.h"
#include "server/server.h"
#include "tests/integration/server_test_util.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/wire_format.h"

namespace provp::server {
namespace {

using ::provp::testing::FieldOf;
using ::provp::testing::ReasonOf;
using ::provp::testing::SolidPng;
using ::provp::testing::TempDir;

constexpr char kAdmin[] = "admin-key-123456";
constexpr char kClassify[] = "/provp.v1.ClassificationService/Classify";
constexpr char kStreamClassify[] = "/provp.v1.ClassificationService/StreamClassify";
constexpr char kCreateJob[] = "/provp.v1.TuningService/CreateTuningJob";
constexpr char kUpload[] = "/provp.v1.DatasetService/UploadDataset";

using ::provp::testing::wire::Len;
using ::provp::testing::wire::Tag;
using ::provp::testing::wire::Varint;

// What one raw call saw.
struct RawResult {
  grpc::Status status;
  std::vector<std::string> responses;
  std::string request_id;  // x-request-id initial metadata ("" if absent)
};

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

class MalformedRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string keys = dir_.path() + "/keys";
    FILE* f = fopen(keys.c_str(), "w");
    fprintf(f, "admin %s ops\n", kAdmin);
    fclose(f);
    ServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.data_dir = dir_.path() + "/data";
    o.api_keys_file = keys;
    o.limits.max_message_bytes = 2 << 20;
    o.batching.max_queue_delay_us = 1000;
    o.shutdown_grace_seconds = 2;
    o.metrics_port = 0;
    o.metrics_bind_address = "127.0.0.1";
    auto s = Server::Create(o, std::make_unique<engine::FakeEngine>());
    ASSERT_OK(s);
    server_ = std::move(*s);
    ASSERT_OK(server_->Start());
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // Sends `messages` as they are on `method` (any kind: a unary method
  // takes one message then the half-close), reads every response, finishes.
  RawResult Call(const std::string& method, const std::vector<std::string>& messages,
                 const std::string& key = kAdmin, const std::string& request_id = "") {
    grpc::GenericStub stub(channel_);
    grpc::CompletionQueue cq;
    grpc::ClientContext ctx;
    if (!key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    if (!request_id.empty()) ctx.AddMetadata("x-request-id", request_id);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto wait = [&cq] {
      void* tag = nullptr;
      bool ok = false;
      return cq.Next(&tag, &ok) && ok;
    };
    RawResult out;
    std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
        stub.PrepareCall(&ctx, method, &cq);
    call->StartCall(reinterpret_cast<void*>(1));
    if (!wait()) {
      ADD_FAILURE() << "call did not start";
      return out;
    }
    for (const std::string& m : messages) {
      grpc::Slice slice(m);
      grpc::ByteBuffer bytes(&slice, 1);
      call->Write(bytes, reinterpret_cast<void*>(2));
      if (!wait()) break;  // the server has already finished the call
    }
    call->WritesDone(reinterpret_cast<void*>(3));
    wait();
    while (true) {
      grpc::ByteBuffer bytes;
      call->Read(&bytes, reinterpret_cast<void*>(4));
      if (!wait()) break;
      std::vector<grpc::Slice> slices;
      (void)bytes.Dump(&slices);
      std::string s;
      for (const grpc::Slice& piece : slices) {
        s.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
      }
      out.responses.push_back(std::move(s));
    }
    call->Finish(&out.status, reinterpret_cast<void*>(5));
    wait();
    const auto& md = ctx.GetServerInitialMetadata();
    auto rid = md.find("x-request-id");
    if (rid != md.end()) out.request_id.assign(rid->second.data(), rid->second.size());
    cq.Shutdown();
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
    }
    return out;
  }

  // grpc_server_handled_total for one method and code, from a scrape.
  double Handled(const std::string& method, const std::string& code) {
    std::istringstream lines(HttpGet(server_->metrics_port(), "/metrics"));
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("grpc_server_handled_total{", 0) == 0 &&
          line.find("grpc_method=\"" + method + "\"") != std::string::npos &&
          line.find("grpc_code=\"" + code + "\"") != std::string::npos) {
        return std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return 0;
  }

  // provp_requests_rejected_total for one reason, from a scrape.
  double Rejected(const std::string& reason) {
    std::istringstream lines(HttpGet(server_->metrics_port(), "/metrics"));
    std::string line;
    const std::string prefix = "provp_requests_rejected_total{reason=\"" + reason + "\"}";
    while (std::getline(lines, line)) {
      if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return 0;
  }

  // A call that must be refused as malformed, naming `field`; checks the
  // request id it was given is the one sent back and logged, and that the
  // RPC metric counted it.
  void ExpectMalformed(const std::string& path, const std::vector<std::string>& messages,
                       const std::string& field, const std::string& words) {
    const std::string method = path.substr(path.rfind('/') + 1);
    const double before = Handled(method, "InvalidArgument");
    const double rejected_before = Rejected("invalid");
    const std::string rid = absl::StrCat("malformed-", ++calls_);
    ::testing::internal::CaptureStderr();
    RawResult r = Call(path, messages, kAdmin, rid);
    const std::string log = ::testing::internal::GetCapturedStderr();
    SCOPED_TRACE(absl::StrCat(path, " ", field));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << r.status.error_message();
    EXPECT_EQ(ReasonOf(r.status), "MALFORMED_MESSAGE");
    EXPECT_EQ(FieldOf(r.status), field);
    EXPECT_NE(r.status.error_message().find(words), std::string::npos) << r.status.error_message();
    EXPECT_EQ(r.request_id, rid);
    bool logged = false;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      logged |= line.find("request_id=" + rid) != std::string::npos &&
                line.find("code=INVALID_ARGUMENT") != std::string::npos &&
                line.find("reason=MALFORMED_MESSAGE") != std::string::npos;
    }
    EXPECT_TRUE(logged) << log;
    EXPECT_EQ(Handled(method, "InvalidArgument"), before + 1);
    // An inference request that does not parse is also a rejected request;
    // admin RPCs are not inference requests.
    const bool inference = path.rfind("/provp.v1.ClassificationService/", 0) == 0;
    EXPECT_EQ(Rejected("invalid"), rejected_before + (inference ? 1 : 0));
  }

  TempDir dir_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  int calls_ = 0;
};

std::string Image() {
  v1::Image img;
  img.set_encoded(SolidPng(250, 10, 10));
  return img.SerializeAsString();
}

TEST_F(MalformedRequestTest, ClassifyInvalidUtf8TruncatedAndWrongWireType) {
  // The black-box finding: inline_classes.names[1] holds "ca\xff\xfet".
  const std::string classes = Len(3, Len(1, "dog") + Len(1, "ca\xff\xfet"));
  ExpectMalformed(kClassify, {classes + Len(5, Image())}, "inline_classes.names[1]",
                  "inline_classes.names[1]: not valid UTF-8");
  // A well-formed request cut short inside its image.
  v1::ClassifyRequest good;
  good.mutable_inline_classes()->add_names("red");
  good.mutable_inline_classes()->add_names("blue");
  good.add_images()->set_encoded(SolidPng(250, 10, 10));
  const std::string bytes = good.SerializeAsString();
  ExpectMalformed(kClassify, {bytes.substr(0, bytes.size() - 7)}, "images[0]", "truncated");
  // images (a message) sent as a varint: protobuf alone would have dropped
  // it into the unknown fields.
  ExpectMalformed(kClassify, {Len(3, Len(1, "red")) + Tag(5, 0) + Varint(1)}, "images[0]",
                  "wire type VARINT");
  // The same well-formed bytes are served.
  RawResult ok = Call(kClassify, {bytes});
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  ASSERT_EQ(ok.responses.size(), 1u);
  v1::ClassifyResponse resp;
  ASSERT_TRUE(resp.ParseFromString(ok.responses[0]));
  EXPECT_EQ(resp.results(0).prediction().labels(0).label(), "red");
  // Authentication still comes first.
  RawResult anon = Call(kClassify, {classes}, /*key=*/"");
  EXPECT_EQ(anon.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(anon.request_id.empty());
}

TEST_F(MalformedRequestTest, CreateTuningJob) {
  const auto* tuning_job = v1::CreateTuningJobRequest::descriptor()->FindFieldByName("tuning_job");
  const auto* display = v1::TuningJob::descriptor()->FindFieldByName("display_name");
  const auto* hp = v1::TuningJob::descriptor()->FindFieldByName("hyperparameters");
  ASSERT_NE(tuning_job, nullptr);
  ASSERT_NE(display, nullptr);
  ASSERT_NE(hp, nullptr);
  ExpectMalformed(kCreateJob, {Len(tuning_job->number(), Len(display->number(), "j\xc3\x28"))},
                  "tuning_job.display_name", "not valid UTF-8");
  v1::CreateTuningJobRequest req;
  req.set_tuning_job_id("job-1");
  req.mutable_tuning_job()->set_dataset("datasets/none");
  req.mutable_tuning_job()->mutable_hyperparameters()->set_epochs(3);
  const std::string bytes = req.SerializeAsString();
  // Fields go out in number order: the cut lands in tuning_job_id.
  ExpectMalformed(kCreateJob, {bytes.substr(0, bytes.size() - 1)}, "tuning_job_id", "truncated");
  ExpectMalformed(kCreateJob, {Len(tuning_job->number(), Tag(hp->number(), 5) + "abcd")},
                  "tuning_job.hyperparameters", "wire type I32");
  // Well-formed: provp's validation answers (the dataset does not exist).
  RawResult r = Call(kCreateJob, {bytes});
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND) << r.status.error_message();
}

TEST_F(MalformedRequestTest, UploadDatasetStreamAbortsAndStoresNothing) {
  v1::UploadDatasetRequest meta;
  meta.mutable_metadata()->set_dataset_id("colours");
  meta.mutable_metadata()->add_class_names("red");
  meta.mutable_metadata()->add_class_names("blue");
  v1::UploadDatasetRequest chunk;
  for (int i = 0; i < 3; ++i) {
    auto* img = chunk.mutable_images()->add_images();
    img->set_label(i % 2);
    img->set_encoded(SolidPng(i % 2 ? 10 : 250, 10, i % 2 ? 250 : 10, 16, i));
  }
  const std::string good_meta = meta.SerializeAsString();
  const std::string good_chunk = chunk.SerializeAsString();
  // Invalid UTF-8 in the first message's class names.
  const std::string bad_meta = Len(1, Len(1, "colours") + Len(3, "red") + Len(3, "bl\xffue"));
  const auto* md_ids = v1::DatasetMetadata::descriptor()->FindFieldByName("dataset_id");
  const auto* md_names = v1::DatasetMetadata::descriptor()->FindFieldByName("class_names");
  ASSERT_EQ(md_ids->number(), 1);
  ASSERT_EQ(md_names->number(), 3);
  ExpectMalformed(kUpload, {bad_meta, good_chunk}, "metadata.class_names[1]",
                  "message 1 of the stream: metadata.class_names[1]: not valid UTF-8");
  // A truncated second message, after images were staged from the first
  // chunk; and a chunk whose images field is a varint.
  ExpectMalformed(kUpload, {good_meta, good_chunk, good_chunk.substr(0, good_chunk.size() / 2)},
                  "images", "message 3 of the stream");
  ExpectMalformed(kUpload, {good_meta, Tag(2, 0) + Varint(5)}, "images",
                  "message 2 of the stream: images: sent with wire type VARINT");
  // Nothing was stored, and no staging folder was left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/data/datasets")) {
    ADD_FAILURE() << "left in datasets/: " << e.path();
  }
  RawResult get = Call("/provp.v1.DatasetService/GetDataset", {Len(1, "datasets/colours")});
  EXPECT_EQ(get.status.error_code(), grpc::StatusCode::NOT_FOUND);
  // The well-formed stream is stored.
  RawResult ok = Call(kUpload, {good_meta, good_chunk, good_chunk});
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
}

TEST_F(MalformedRequestTest, StreamClassifyAnswersEarlierMessagesThenEnds) {
  v1::ClassifyRequest good;
  good.mutable_inline_classes()->add_names("red");
  good.mutable_inline_classes()->add_names("blue");
  good.add_images()->set_encoded(SolidPng(250, 10, 10));
  good.set_request_id("first");
  const std::string bytes = good.SerializeAsString();
  const std::string bad_utf8 = Len(3, Len(1, "dog") + Len(1, "ca\xff\xfet")) + Len(5, Image());
  for (const auto& [bad, field, words] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {bad_utf8, "inline_classes.names[1]", "message 2 of the stream: inline_classes"},
           {bytes.substr(0, bytes.size() - 9), "images[0]", "truncated"},
           {Tag(6, 2) + Varint(1) + "x", "top_k", "wire type LEN"}}) {
    ExpectMalformed(kStreamClassify, {bytes, bad, bytes}, field, words);
  }
  // The message before the malformed one was answered.
  RawResult r = Call(kStreamClassify, {bytes, bad_utf8, bytes});
  ASSERT_EQ(r.responses.size(), 1u);
  v1::ClassifyResponse first;
  ASSERT_TRUE(first.ParseFromString(r.responses[0]));
  EXPECT_EQ(first.request_id(), "first");
  EXPECT_EQ(first.results(0).prediction().labels(0).label(), "red");
}

}  // namespace
}  // namespace provp::server
