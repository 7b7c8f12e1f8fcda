// Implementation of classification_service.h.
#include "server/classification_service.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "core/util/status_macros.h"
#include "server/state/errors.h"

namespace provp::server {
namespace {

constexpr char kService[] = "provp.v1.ClassificationService";

}  // namespace

ClassificationServiceImpl::ClassificationServiceImpl(RpcEnv env, Classifier* classifier)
    : RpcService(env, kService), classifier_(classifier) {
  AddUnary("Classify", Scope::kClassify, &ClassificationServiceImpl::Classify);
  AddBidiStream("StreamClassify", Scope::kClassify, &ClassificationServiceImpl::StreamClassify);
  AddUnary("EmbedImages", Scope::kClassify, &ClassificationServiceImpl::EmbedImages);
  AddUnary("EmbedTexts", Scope::kClassify, &ClassificationServiceImpl::EmbedTexts);
  AddUnary("GetServerInfo", Scope::kClassify, &ClassificationServiceImpl::GetServerInfo);
}

void ClassificationServiceImpl::OnMalformedRequest(const std::string& method) {
  if (method != "GetServerInfo") env_.metrics.rejected->WithLabels({"invalid"}).Increment();
}

absl::Status ClassificationServiceImpl::Classify(Rpc& rpc, const v1::ClassifyRequest* request,
                                                 v1::ClassifyResponse* response) {
  absl::StatusOr<v1::ClassifyResponse> r =
      classifier_->Classify(*request, rpc.deadline(), [&] { return rpc.cancelled(); });
  if (r.status().code() == absl::StatusCode::kInvalidArgument) {
    env_.metrics.rejected
        ->WithLabels({ReasonOf(r.status()) == "TOO_MANY_IMAGES" ? "too_large" : "invalid"})
        .Increment();
  }
  RETURN_IF_ERROR(r.status());
  *response = *std::move(r);
  return absl::OkStatus();
}

// The handler thread reads; up to limits.stream_max_in_flight messages are
// answered at once by worker threads of this stream (started as needed), so
// a client that sends without waiting has several requests in the batcher
// and they share executions. Answers are written as they are ready (the
// proto allows any order; each carries its request_id); writes are
// serialised, reads and writes overlap as gRPC's sync API allows.
absl::Status ClassificationServiceImpl::StreamClassify(
    Rpc& rpc, RequestReader<v1::ClassifyRequest>& reader,
    grpc::ServerReaderWriter<v1::ClassifyResponse, grpc::ByteBuffer>* stream) {
  const size_t window =
      static_cast<size_t>(std::max(1, classifier_->limits().stream_max_in_flight));
  std::mutex mu;
  std::condition_variable cv;  // a message queued, one answered, or the end
  std::deque<v1::ClassifyRequest> queue;
  size_t in_flight = 0;  // queued or being answered
  size_t idle_workers = 0;
  bool closed = false;        // the reader is done; workers exit once idle
  bool write_failed = false;  // the client is gone
  std::mutex write_mu;
  std::vector<std::thread> workers;

  auto answer = [&](const v1::ClassifyRequest& request) {
    // Streams have no per-message deadline; bound each request by the
    // stream's deadline.
    absl::StatusOr<v1::ClassifyResponse> r;
    try {
      r = classifier_->Classify(request, rpc.deadline(), [&] { return rpc.cancelled(); });
    } catch (const std::exception& e) {
      r = absl::InternalError(std::string("unhandled exception: ") + e.what());
    }
    v1::ClassifyResponse response;
    if (r.ok()) {
      response = *std::move(r);
    } else {
      response.set_request_id(request.request_id());
      *response.mutable_error() = ToRpcStatus(r.status());
    }
    std::lock_guard<std::mutex> lock(write_mu);
    if (write_failed) return;
    if (!stream->Write(response)) {
      std::lock_guard<std::mutex> state_lock(mu);
      write_failed = true;
    }
  };
  auto work = [&] {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      ++idle_workers;
      cv.wait(lock, [&] { return !queue.empty() || closed; });
      --idle_workers;
      if (queue.empty()) return;
      v1::ClassifyRequest request = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      answer(request);
      lock.lock();
      --in_flight;
      cv.notify_all();
    }
  };

  absl::Status read_status;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < window || write_failed; });
      if (write_failed) break;
    }
    // A message that does not parse ends the stream (INVALID_ARGUMENT
    // MALFORMED_MESSAGE, after the earlier messages were answered): unlike
    // a request that fails validation, it has no request_id to answer to,
    // and the client's encoder is broken.
    v1::ClassifyRequest request;
    absl::StatusOr<bool> more = reader.Read(&request);
    if (!more.ok()) {
      read_status = more.status();
      break;
    }
    if (!*more) break;
    bool need_worker;
    {
      std::lock_guard<std::mutex> lock(mu);
      need_worker = idle_workers == 0 && workers.size() < window;
    }
    if (need_worker) {
      try {
        workers.emplace_back(work);
      } catch (const std::system_error&) {
        // No thread to be had: the workers there are (or this thread) go on.
      }
    }
    if (workers.empty()) {
      answer(request);
    } else {
      {
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(std::move(request));
        ++in_flight;
      }
      cv.notify_all();
    }
    if (env_.draining.load()) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    closed = true;
  }
  cv.notify_all();
  for (std::thread& t : workers) t.join();  // every message read is answered
  RETURN_IF_ERROR(read_status);
  // A stream cut short by a drain says so (issue 14): after its in-flight
  // messages are answered, UNAVAILABLE with reason DRAINING tells the
  // client to reconnect elsewhere, where OK would read as a normal end.
  if (env_.draining.load()) {
    ErrorDetail d;
    d.retry_after_ms = 1000;
    return MakeError(absl::StatusCode::kUnavailable, "DRAINING",
                     "server is shutting down; reconnect to continue the stream", d);
  }
  return absl::OkStatus();
}

absl::Status ClassificationServiceImpl::EmbedImages(Rpc& rpc, const v1::EmbedImagesRequest* req,
                                                    v1::EmbedImagesResponse* resp) {
  ASSIGN_OR_RETURN(*resp,
                   classifier_->EmbedImages(*req, rpc.deadline(), [&] { return rpc.cancelled(); }));
  return absl::OkStatus();
}

absl::Status ClassificationServiceImpl::EmbedTexts(Rpc& rpc, const v1::EmbedTextsRequest* req,
                                                   v1::EmbedTextsResponse* resp) {
  ASSIGN_OR_RETURN(*resp, classifier_->EmbedTexts(*req));
  return absl::OkStatus();
}

absl::Status ClassificationServiceImpl::GetServerInfo(Rpc& rpc, const v1::GetServerInfoRequest*,
                                                      v1::ServerInfo* resp) {
  const engine::ModelInfo& info = classifier_->model_info();
  const Limits& limits = classifier_->limits();
  resp->set_version(PROVP_VERSION);
  resp->set_backbone(info.backbone);
  resp->set_backbone_description(info.description);
  resp->set_device(info.device);
  resp->set_image_resolution(info.image_resolution);
  resp->set_embedding_dimension(info.embed_dim);
  resp->set_max_images_per_request(limits.max_images_per_request);
  resp->set_max_pixels_per_image(limits.max_pixels_per_image);
  resp->set_max_classes_per_request(limits.max_classes_per_request);
  resp->set_max_message_bytes(limits.max_message_bytes);
  resp->add_default_templates(kDefaultClassifyTemplate);
  return absl::OkStatus();
}

}  // namespace provp::server
