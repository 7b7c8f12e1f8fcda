// What every RPC handler shares: the server environment (engine, store,
// batcher, managers, options), and Rpc, the per-call wrapper that assigns a
// request id (returned as `x-request-id` initial metadata), authenticates
// the API key against the method's scope, and on Finish records metrics,
// logs one line and converts the status at the edge. Also small helpers for
// resource names, ids, page tokens and timestamps.
// Rpc is used by one handler thread; ServerEnv members are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/engine/engine.h"
#include "core/store/store.h"
#include "server/auth.h"
#include "server/batcher.h"
#include "server/errors.h"
#include "server/logging.h"
#include "server/server_metrics.h"
#include "server/server_options.h"
#include "server/text_cache.h"

namespace provp::server {

class PromptSetManager;
class JobManager;

struct ServerEnv {
  ServerOptions options;
  engine::Engine* engine = nullptr;
  store::Store* store = nullptr;
  Logger* logger = nullptr;
  const ApiKeys* keys = nullptr;
  ServerMetrics* metrics = nullptr;
  Batcher* batcher = nullptr;
  TextFeatureCache* text_cache = nullptr;
  PromptSetManager* prompt_sets = nullptr;
  JobManager* jobs = nullptr;
  // Set on SIGTERM: new work is refused with UNAVAILABLE.
  std::atomic<bool> draining{false};
};

class Rpc {
 public:
  Rpc(ServerEnv& env, grpc::ServerContext* ctx, const char* service, const char* method,
      const char* type, Scope scope);

  // OK when the caller may proceed (authenticated, scope, not draining).
  const absl::Status& admission() const { return admission_; }
  const std::string& request_id() const { return request_id_; }
  const Principal& principal() const { return principal_; }
  grpc::ServerContext* context() const { return ctx_; }
  // The client's deadline (InfiniteFuture when none).
  absl::Time deadline() const;

  // Records, logs and converts the result. Call exactly once.
  grpc::Status Finish(const absl::Status& status, const LogFields& extra = {});

 private:
  ServerEnv& env_;
  grpc::ServerContext* ctx_;
  std::string service_;
  std::string method_;
  const char* type_;
  absl::Time start_;
  std::string request_id_;
  Principal principal_;
  absl::Status admission_;
};

// Runs `body` (returning absl::Status) for an admitted call; exceptions
// become INTERNAL, so no request can take the process down.
template <typename Fn>
grpc::Status Handle(Rpc& rpc, Fn&& body) {
  if (!rpc.admission().ok()) return rpc.Finish(rpc.admission());
  absl::Status s;
  try {
    s = body();
  } catch (const std::exception& e) {
    s = absl::InternalError(std::string("unhandled exception: ") + e.what());
  } catch (...) {
    s = absl::InternalError("unhandled exception");
  }
  return rpc.Finish(s);
}

// "promptSets/x" -> "x" after checking the prefix and the id syntax.
absl::StatusOr<std::string> ParseName(absl::string_view name, absl::string_view collection,
                                      absl::string_view field);
// [a-z0-9][a-z0-9-_]{0,62}; INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidateId(absl::string_view id, absl::string_view field);
// Distinct, non-empty names within the length limit, at most max_count.
absl::Status ValidateNames(const std::vector<std::string>& names, absl::string_view field,
                           const Limits& limits, int max_count);
// Templates each containing "{}".
absl::Status ValidateTemplates(const std::vector<std::string>& templates, const Limits& limits);

// Page tokens are decimal offsets.
absl::StatusOr<int64_t> ParsePageToken(absl::string_view token);
int64_t ClampPageSize(int32_t page_size, int64_t default_size);

// One page of stored records of `kind` (serialized messages, newest order as
// the store lists them) and the token of the next page ("" at the end).
struct RecordPage {
  std::vector<std::string> records;
  std::string next_page_token;
};
absl::StatusOr<RecordPage> ListRecordPage(store::Store& store, store::Kind kind, int32_t page_size,
                                          absl::string_view page_token, int64_t default_size = 50);

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
int64_t NowMicros();
// Random lower-case hex string of `n` characters.
std::string RandomHex(int n);

}  // namespace provp::server
