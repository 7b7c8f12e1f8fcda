// Fuzzes a Classify request from its bytes through the server's own path:
// ParseRequest (the wire check and parse every RPC's bytes go through,
// server/rpc_service.h), then Classifier::Classify with its validation,
// class resolution (inline, the class set "colours", the prompt set "p1"),
// per-image decoding under the pixel budget, batching and scoring on the
// fake engine. Invariants: a refusal to parse is MALFORMED_MESSAGE and never
// the safety net; whatever parses re-parses after serializing; a request is
// refused only with a client-side code; an answer has one result per image,
// each a prediction with at most top_k labels or a per-item error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "fuzz/server_core.h"
#include "provp/v1/classification.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using provp::fuzz::Require;
  provp::fuzz::ServerCore& core = provp::fuzz::Core();
  provp::v1::ClassifyRequest req;
  absl::Status parsed =
      provp::server::ParseRequest(std::string(reinterpret_cast<const char*>(data), size), &req);
  if (!parsed.ok()) {
    provp::fuzz::RequireMalformed(parsed);
    return 0;
  }
  provp::v1::ClassifyRequest again;
  Require(provp::server::ParseRequest(req.SerializeAsString(), &again).ok(),
          "a parsed request re-parses");
  absl::StatusOr<provp::v1::ClassifyResponse> r =
      core.classifier->Classify(req, absl::Now() + absl::Seconds(10), [] { return false; });
  if (!r.ok()) {
    const absl::StatusCode c = r.status().code();
    Require(c == absl::StatusCode::kInvalidArgument || c == absl::StatusCode::kNotFound ||
                c == absl::StatusCode::kFailedPrecondition ||
                c == absl::StatusCode::kResourceExhausted || c == absl::StatusCode::kUnimplemented,
            "Classify refuses with a client-side code", r.status());
    return 0;
  }
  Require(r->results_size() == req.images_size(), "one result per image");
  const int k = req.top_k() == 0 ? 5 : req.top_k();
  for (const provp::v1::ImageResult& result : r->results()) {
    Require(result.has_error() || result.prediction().labels_size() <= k, "at most top_k labels");
    for (const provp::v1::Label& l : result.prediction().labels()) {
      Require(l.class_index() >= 0 && l.class_index() < r->class_names_size() &&
                  r->class_names(l.class_index()) == l.label(),
              "labels index the class names");
    }
  }
  return 0;
}
